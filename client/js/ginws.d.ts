// Type declarations for ginws.js.

export declare const SUBPROTOCOL: 'ginws.v1';
export declare const TERMINAL_CODES: readonly number[];

export interface FieldError {
  field: string;
  rule: string;
  param?: string;
  message: string;
}

export declare class GinwsError extends Error {
  constructor(code: string, message: string, fields?: FieldError[]);
  /** Server codes (bad_request, validation_failed, forbidden, ...) or timeout, queue_full, connection_lost, closed. */
  code: string;
  fields: FieldError[];
}

export declare function backoff(attempt: number, base: number, max: number, r: number): number;

/** The milliseconds a Retry-After header asks for (seconds or an HTTP date), at most max; 0 without one. */
export declare function retryAfter(value: string | undefined, max: number): number;

export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateInfo {
  code?: number;
  reason?: string;
  error?: unknown;
  retryAt?: number;
  /** An upgrade refused with this HTTP status (Node's ws package only: browsers hide it). */
  status?: number;
  /** The refusal's Retry-After in ms, capped at maxDelay. */
  retryAfter?: number;
}

export interface ServerEvent<T = unknown> {
  type: string;
  room?: string;
  offset?: number;
  data: T;
}

export interface JoinResult {
  room: string;
  members: number;
  epoch: string;
  offset: number;
  recovered: boolean;
}

export interface ClientOptions {
  url: string;
  token: () => string | Promise<string>;
  WebSocket?: unknown;
  baseDelay?: number;
  maxDelay?: number;
  resetAfter?: number;
  rateLimitDelay?: number;
  random?: () => number;
  queueSize?: number;
  requestTimeout?: number;
  onState?: (state: State, info: StateInfo) => void;
  onRecover?: (room: string, recovered: boolean) => void;
}

/**
 * The data of each request type. Empty here; the declaration file that
 * github.com/ginws/ginws/schema generates from the server's handlers fills
 * it (declaration merging), so that request() is type-checked.
 */
export interface Requests {}
/** The data of each event type, filled the same way. */
export interface Events {}

type RequestData<K extends string> = K extends keyof Requests ? Requests[K] : unknown;
type EventData<K extends string> = K extends keyof Events ? Events[K] : any;

export declare class Client {
  constructor(opts: ClientOptions);
  state: State;
  nextRetryAt: number | null;
  lastClose: { code: number; reason: string } | null;
  session: string | null;
  on<K extends string>(type: K, fn: (data: EventData<K>, event: ServerEvent<EventData<K>>) => void, opts?: { room?: string }): () => void;
  off(type: string, fn: Function): void;
  /** Binary frames from the server: ArrayBuffer in browsers, Buffer with the ws package. */
  onBinary(fn: (data: ArrayBuffer) => void): () => void;
  /** One binary frame to the server's binary handler; throws GinwsError not_connected while offline (not queued). */
  sendBinary(data: ArrayBuffer | ArrayBufferView | Blob): void;
  /** repeat: safe to handle twice, so it is sent again after a reconnect instead of failing with connection_lost. */
  request<K extends string, R = any>(type: K, data?: RequestData<K>, opts?: { room?: string; timeout?: number; repeat?: boolean }): Promise<R>;
  join(room: string): Promise<JoinResult>;
  leave(room: string): Promise<void>;
  /** Reconnects at once, back-off reset, while waiting to reconnect (browsers do it when back online or visible). */
  reconnectNow(): void;
  close(): void;
}
