import { defineConfig } from 'vite';

// The API process serves the built files at / (src/perparb/api/static). For `npm run dev`,
// point PERPARB_API at a running `perparb demo` (its API is on by default) (default http://127.0.0.1:8000).
const api = process.env.PERPARB_API ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: './',
  build: {
    outDir: '../src/perparb/api/static',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': api,
      '/health': api,
      '/metrics': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
});
