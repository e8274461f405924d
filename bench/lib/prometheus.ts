/** Sums a Prometheus counter over the series whose labels include every pair in `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+([^\s]+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map([...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m): [string, string] => [m[1] ?? '', m[2] ?? '']));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) total += Number(match[4]);
  }
  return total;
}
