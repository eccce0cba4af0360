// The /ws stream: same origin, reconnecting with exponential backoff and jitter.
import type { ServerMessage } from './types';

export interface StreamHandlers {
  onMessage: (msg: ServerMessage) => void;
  onState: (connected: boolean, retryInMs: number | null) => void;
}

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

export function wsUrl(path = '/ws'): string {
  const u = new URL(path, window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

export function connectStream(h: StreamHandlers): void {
  let attempt = 0;
  const open = (): void => {
    const ws = new WebSocket(wsUrl());
    ws.onopen = () => {
      attempt = 0;
      h.onState(true, null);
    };
    ws.onmessage = (ev: MessageEvent<string>) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(ev.data) as ServerMessage;
      } catch {
        return;
      }
      h.onMessage(msg);
    };
    ws.onclose = () => {
      const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt);
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      attempt += 1;
      h.onState(false, delay);
      window.setTimeout(open, delay);
    };
    ws.onerror = () => ws.close();
  };
  open();
}
