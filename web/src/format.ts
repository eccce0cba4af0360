// Number and time formatting, and a tiny DOM helper.

export const dash = '—';

export function num(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return dash;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Significant-digit formatting for sizes (0.00123, 12.5, 4,978). */
export function qty(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return dash;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 0 : a >= 1 ? 3 : 6;
  return x.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** A price with enough significant digits to tell levels apart (65,012.5, 3.1425, 0.0012345). */
export function price(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x) || x === 0) return dash;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 2 : a >= 1 ? 4 : Math.min(10, 3 - Math.floor(Math.log10(a)) + 1);
  return x.toLocaleString('en-US', { minimumFractionDigits: Math.min(digits, 2), maximumFractionDigits: digits });
}

/** Quote notional, compact: 683,228 -> 683.2k. */
export function money(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return dash;
  const a = Math.abs(x);
  if (a >= 999_995) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 9_999.5) return `${(x / 1e3).toFixed(1)}k`;
  return num(x, 2);
}

export function pct(fraction: number | null | undefined, digits = 2): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return dash;
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function signed(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return dash;
  return `${x > 0 ? '+' : ''}${x.toFixed(digits)}`;
}

/** 75 -> "1m 15s", 3 -> "3.0s". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return dash;
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  return m ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A settlement countdown, "7:25:03" (or "settling" once due). */
export function countdown(ms: number): string {
  if (!Number.isFinite(ms)) return dash;
  if (ms <= 0) return 'settling';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function ageMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return dash;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function clock(ns: number): string {
  return new Date(ns / 1e6).toLocaleTimeString('en-GB', { hour12: false });
}

export function intervalLabel(h: number): string {
  if (!Number.isFinite(h) || h <= 0) return '?';
  return h < 1 ? `${Math.round(h * 60)}m` : `${+h.toFixed(2)}h`;
}

type Attrs = Record<string, string | number | boolean | undefined>;

/** h('td', {class: 'num', 'data-testid': 'x'}, 'text', child) */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Attrs = {}, ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

/** Set text only when it changed (cheap re-renders without layout churn). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Remove anything that looks like a credential from a status string. */
export function redact(s: string): string {
  return s
    .replace(/([?&](?:api[_-]?key|key|token|secret|sign(?:ature)?|passphrase)=)[^&\s]+/gi, '$1***')
    .replace(/(bearer\s+)\S+/gi, '$1***');
}
