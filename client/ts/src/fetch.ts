import { retryAfterMs } from "./errors.js";

/** Options of the Phoenix clients. */
export interface PhoenixOptions {
  /** The gateway's base URL, for example "https://admin.example.com". */
  baseUrl: string;
  /**
   * The bearer token (a JWT minted by the platform), or a function returning it; a function is
   * asked again before every attempt, so it may refresh an expiring token.
   */
  token?: string | ((request: Request) => string | Promise<string>);
  /** How many times a retryable answer (429, 503) is retried: default 3, 0 turns retries off. */
  retries?: number;
  /**
   * The longest wait before one retry, in milliseconds (default 10 000). An answer whose
   * Retry-After asks for longer is returned at once, for the caller to schedule.
   */
  maxRetryWaitMs?: number;
  /**
   * Whether a POST without an Idempotency-Key gets a fresh one (default true), so that retrying
   * it after a 503 cannot write twice. Without a key such a POST is not retried after a 503.
   * Event ingestion and the dry run never get one: they are idempotent by themselves.
   */
  idempotencyKeys?: boolean;
  /** The fetch to send requests with (default globalThis.fetch). */
  fetch?: (request: Request) => Promise<Response>;
  /** How to wait before a retry (default a timer that the request's signal cancels). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** newIdempotencyKey returns a fresh random Idempotency-Key (a UUID). */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

/**
 * phoenixFetch returns a fetch for openapi-fetch that signs requests, gives a POST that is not
 * repeatable by itself an Idempotency-Key, and retries: a 429 after its Retry-After, a 503 after
 * its Retry-After or a jittered backoff, the latter only for requests that are safe to repeat.
 * Every other answer, and a retryable one past the retries or the maximum wait, is returned as
 * it came.
 */
export function phoenixFetch(options: PhoenixOptions): (input: Request) => Promise<Response> {
  const send = options.fetch ?? ((r: Request) => globalThis.fetch(r));
  const retries = Math.max(options.retries ?? 3, 0);
  const maxWait = options.maxRetryWaitMs ?? 10_000;
  const sleep = options.sleep ?? sleepWithSignal;
  const { token } = options;
  return async (input) => {
    const headers = new Headers(input.headers);
    if (options.idempotencyKeys !== false && input.method === "POST" && !repeatable(input) && !headers.has("Idempotency-Key")) {
      headers.set("Idempotency-Key", newIdempotencyKey());
    }
    const template = new Request(input, { headers });
    for (let attempt = 0; ; attempt++) {
      const request = template.clone();
      if (token !== undefined) {
        request.headers.set("Authorization", `Bearer ${typeof token === "string" ? token : await token(request)}`);
      }
      const response = await send(request);
      if (attempt >= retries || !retryable(request, response.status)) return response;
      const wait = retryAfterMs(response.headers.get("Retry-After")) || backoff(attempt);
      if (wait > maxWait) return response;
      await response.body?.cancel();
      await sleep(wait, request.signal);
    }
  };
}

function retryable(request: Request, status: number): boolean {
  if (status === 429) return true; // refused before any work was done
  if (status !== 503) return false; // the work may have happened: repeat only what is safe to
  return repeatable(request) || request.headers.has("Idempotency-Key");
}

/**
 * repeatable: sending the request twice does what sending it once does. GET, HEAD, PUT (a
 * replace) and DELETE; event ingestion, deduplicated by event_id (a repeat answers "duplicate"
 * with the first outcome); the dry run, which writes nothing. These get no automatic key, which
 * would cost the gateway a stored answer per event.
 */
function repeatable(request: Request): boolean {
  if (["GET", "HEAD", "PUT", "DELETE"].includes(request.method)) return true;
  const path = new URL(request.url).pathname;
  return request.method === "POST" && ["/v1/events", "/v1/events/batch", "/v1/affiliate/simulate"].some((p) => path.endsWith(p));
}

/** backoff: full jitter over 100 ms, 200 ms, 400 ms … capped at 5 s. */
function backoff(attempt: number): number {
  const window = Math.min(100 * 2 ** Math.min(attempt, 16), 5_000);
  return Math.floor(Math.random() * window) + 1;
}

function sleepWithSignal(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
