// What a hostile request may get back, as a list of problems: an empty list passes. Tests assert
// `expect(problems).toEqual([])`, so a failure prints every problem with the response excerpt.

/** An HTTP answer as received: the status and the body text (parsed when it is JSON). */
export interface HttpAnswer {
  status: number;
  text: string;
  contentType: string;
}

interface WireError {
  message?: unknown;
  extensions?: { code?: unknown };
}

interface WireResponse {
  data?: unknown;
  errors?: unknown;
}

/** The first `max` characters of `text`, with how much was cut. */
export function excerpt(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, max)}... (${text.length} bytes)`;
}

function parse(answer: HttpAnswer): WireResponse | undefined {
  try {
    const json: unknown = JSON.parse(answer.text);
    return json !== null && typeof json === 'object' && !Array.isArray(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/** The `extensions.code` of every error in a response (undefined where there is none). */
export function errorCodes(answer: HttpAnswer): Array<string | undefined> {
  const errors = parse(answer)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.map((e: WireError) => (typeof e?.extensions?.code === 'string' ? e.extensions.code : undefined));
}

/**
 * Problems with the errors of a response: not a JSON object, an error without a string
 * `extensions.code`, or an `INTERNAL_SERVER_ERROR` (a hostile input must never reach one).
 */
export function errorProblems(answer: HttpAnswer): string[] {
  const json = parse(answer);
  if (!json) return [`HTTP ${answer.status} with a body that is not a JSON object (${answer.contentType}): ${excerpt(answer.text)}`];
  const problems: string[] = [];
  if (json.errors !== undefined && !Array.isArray(json.errors)) problems.push(`"errors" is not a list: ${excerpt(answer.text)}`);
  const errors = Array.isArray(json.errors) ? (json.errors as WireError[]) : [];
  const uncoded = errors.filter((e) => typeof e?.extensions?.code !== 'string');
  if (uncoded.length > 0) {
    problems.push(
      `HTTP ${answer.status}: ${uncoded.length} of ${errors.length} errors have no extensions.code, e.g. ${excerpt(JSON.stringify(uncoded[0]))}`,
    );
  }
  const internal = errors.filter((e) => e?.extensions?.code === 'INTERNAL_SERVER_ERROR');
  if (internal.length > 0) problems.push(`HTTP ${answer.status}: INTERNAL_SERVER_ERROR: ${excerpt(JSON.stringify(internal[0]))}`);
  return problems;
}

export interface HostileExpectation {
  /** Only this code will do (e.g. `COST_ESTIMATED_TOO_EXPENSIVE`), on a 4xx. */
  code?: string;
  /** Only this status will do. */
  status?: number;
  /**
   * Codes a 200 may carry as field errors of a valid operation: a request error is a 4xx, but an
   * argument a resolver refuses (a malformed cursor) is an execution error, which GraphQL over
   * HTTP answers with 200. @default none: a 200 must have data and no errors
   */
  executionErrorCodes?: readonly string[];
}

/**
 * Issue #11's rule for a hostile request: a 4xx whose errors all carry `extensions.code`, or a
 * correct answer (200 with data and no errors). Never a 5xx, an uncoded error, or
 * INTERNAL_SERVER_ERROR.
 */
export function hostileAnswerProblems(answer: HttpAnswer, expectation: HostileExpectation = {}): string[] {
  const problems = errorProblems(answer);
  const json = parse(answer);
  const errors = Array.isArray(json?.errors) ? (json?.errors as WireError[]) : [];
  const codes = errorCodes(answer);
  const shown = `HTTP ${answer.status} ${excerpt(answer.text)}`;
  if (expectation.status !== undefined && answer.status !== expectation.status)
    problems.push(`expected HTTP ${expectation.status}, got ${shown}`);
  if (answer.status >= 400 && answer.status < 500) {
    if (errors.length === 0) problems.push(`a 4xx without errors: ${shown}`);
  } else if (answer.status === 200) {
    const allowed = expectation.executionErrorCodes ?? [];
    const unexpected = codes.filter((c) => c === undefined || !allowed.includes(c));
    const hasData = json !== undefined && json.data !== null && typeof json.data === 'object';
    if (unexpected.length > 0) problems.push(`a 200 with errors (${unexpected.map(String).join(', ')}): ${shown}`);
    else if (!hasData && errors.length === 0) problems.push(`a 200 without data or errors: ${shown}`);
  } else {
    problems.push(`neither a 4xx nor a 200: ${shown}`);
  }
  if (expectation.code !== undefined && (answer.status < 400 || answer.status >= 500 || !codes.includes(expectation.code))) {
    problems.push(`expected a 4xx with ${expectation.code}, got ${shown}`);
  }
  return [...new Set(problems)];
}
