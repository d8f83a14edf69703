/** The error codes of the Phoenix Referral contract (the `code` of an error answer). */
export const ErrorCode = {
  // 400
  InvalidJSON: "INVALID_JSON",
  ValidationFailed: "VALIDATION_FAILED",
  TenantRequired: "TENANT_REQUIRED",
  // 401, 403
  Unauthorized: "UNAUTHORIZED",
  Forbidden: "FORBIDDEN",
  // 404
  NotFound: "NOT_FOUND",
  CodeNotFound: "CODE_NOT_FOUND",
  NotAnAffiliate: "NOT_AN_AFFILIATE",
  // 405
  MethodNotAllowed: "METHOD_NOT_ALLOWED",
  // 409
  CodeTaken: "CODE_TAKEN",
  AlreadyReferred: "ALREADY_REFERRED",
  CodeExhausted: "CODE_EXHAUSTED",
  AffiliateExists: "AFFILIATE_EXISTS",
  InvalidTransition: "INVALID_TRANSITION",
  IdempotencyKeyReused: "IDEMPOTENCY_KEY_REUSED",
  // 413
  BodyTooLarge: "BODY_TOO_LARGE",
  // 422
  CodeInactive: "CODE_INACTIVE",
  CodeExpired: "CODE_EXPIRED",
  SelfReferral: "SELF_REFERRAL",
  ReferralCycle: "REFERRAL_CYCLE",
  HierarchyCycle: "HIERARCHY_CYCLE",
  CodeLimitReached: "CODE_LIMIT_REACHED",
  RiskRejected: "RISK_REJECTED",
  NotReversible: "NOT_REVERSIBLE",
  // 429
  RateLimited: "RATE_LIMITED",
  // 500, 503
  Internal: "INTERNAL",
  Unavailable: "UNAVAILABLE",
} as const;

/** One of the contract's error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * PhoenixError is an error answer of a gateway: its status, the contract's envelope
 * `{"error": {"code", "message", "fields"}}`, and the headers a client acts on.
 */
export class PhoenixError extends Error {
  /** The HTTP status (4xx or 5xx). */
  readonly status: number;
  /** The envelope's code; `undefined` when the body was not an envelope (a proxy's 502 page). */
  readonly code: ErrorCode | undefined;
  /** The envelope's human-readable message (the status text without an envelope). */
  readonly detail: string;
  /** The invalid fields with a reason each (VALIDATION_FAILED only). */
  readonly fields: Record<string, string>;
  /** The X-Request-Id header: the request's id in the gateway's logs. */
  readonly requestId: string | undefined;
  /** The Retry-After header in milliseconds (429 RATE_LIMITED, some 503s), 0 when absent. */
  readonly retryAfterMs: number;

  constructor(init: {
    status: number;
    code?: ErrorCode;
    message: string;
    fields?: Record<string, string>;
    requestId?: string;
    retryAfterMs?: number;
  }) {
    let text = `phoenix: ${init.status}`;
    if (init.code) text += ` ${init.code}`;
    if (init.message) text += `: ${init.message}`;
    if (init.requestId) text += ` (request ${init.requestId})`;
    super(text);
    this.name = "PhoenixError";
    this.status = init.status;
    this.code = init.code;
    this.detail = init.message;
    this.fields = init.fields ?? {};
    this.requestId = init.requestId ?? undefined;
    this.retryAfterMs = init.retryAfterMs ?? 0;
  }

  /** fromResponse reads an error answer: `body` is its parsed JSON body, if any. */
  static fromResponse(response: Response, body: unknown): PhoenixError {
    const env = (body as { error?: { code?: unknown; message?: unknown; fields?: unknown } } | undefined)?.error;
    const hasEnvelope = typeof env?.code === "string";
    return new PhoenixError({
      status: response.status,
      code: hasEnvelope ? (env!.code as ErrorCode) : undefined,
      message: hasEnvelope && typeof env!.message === "string" ? env!.message : response.statusText,
      fields: hasEnvelope && env!.fields && typeof env!.fields === "object" ? (env!.fields as Record<string, string>) : {},
      requestId: response.headers.get("X-Request-Id") ?? undefined,
      retryAfterMs: retryAfterMs(response.headers.get("Retry-After")),
    });
  }
}

/** retryAfterMs parses a Retry-After header (delay-seconds or an HTTP date) into milliseconds. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number {
  const v = value?.trim();
  if (!v) return 0;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(at - now, 0);
}
