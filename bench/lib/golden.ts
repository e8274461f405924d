// The golden diff: every gateway must return the same data as ours for the same request, so no
// gateway is fast by being wrong. Key order does not matter; error messages may differ between
// gateways, so only whether there were errors is compared.
import type { GraphQLRequest } from './workloads';

export interface GoldenResult {
  pass: boolean;
  /** The first difference from ours: a JSON path and both values, shortened. */
  difference?: string;
}

interface Answer {
  status: number;
  data: unknown;
  errors: boolean;
  /** The first error's message and code, to say what went wrong. */
  firstError?: string;
}

export async function ask(url: string, request: GraphQLRequest): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { data?: unknown; errors?: Array<{ message?: unknown; extensions?: { code?: unknown } }> };
    const errors = Array.isArray(body.errors) && body.errors.length > 0;
    const first = errors ? body.errors?.[0] : undefined;
    return {
      status: res.status,
      data: body.data ?? null,
      errors,
      ...(first
        ? {
            firstError: `${String(first.message).slice(0, 160)} (${typeof first.extensions?.code === 'string' ? first.extensions.code : 'no code'})`,
          }
        : {}),
    };
  } catch {
    return { status: res.status, data: text.slice(0, 200), errors: true };
  }
}

const short = (value: unknown) => {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** The first path where `a` and `b` differ, or undefined when they are equal (ignoring key order). */
export function firstDifference(a: unknown, b: unknown, path = '$'): string | undefined {
  if (a === b) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: ${a.length} items vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
    for (const key of [...keys].sort()) {
      const d = firstDifference(ao[key], bo[key], `${path}.${key}`);
      if (d) return d;
    }
    return undefined;
  }
  return `${path}: ${short(a)} vs ${short(b)}`;
}

/**
 * Sends each request to the reference gateway and to `url`, back to back, and compares. The
 * reference is asked again for every comparison so both answers describe the same moment.
 */
export async function goldenDiff(referenceUrl: string, url: string, requests: GraphQLRequest[]): Promise<GoldenResult> {
  for (const [i, request] of requests.entries()) {
    const [ours, theirs] = [await ask(referenceUrl, request), await ask(url, request)];
    if (ours.errors)
      return { pass: false, difference: `request ${i}: ours answered with errors (HTTP ${ours.status}): ${ours.firstError ?? ''}` };
    if (theirs.errors !== ours.errors)
      return { pass: false, difference: `request ${i}: errors (HTTP ${theirs.status}) where ours had none: ${theirs.firstError ?? ''}` };
    const difference = firstDifference(ours.data, theirs.data);
    if (difference) return { pass: false, difference: `request ${i}: ${difference}` };
  }
  return { pass: true };
}
