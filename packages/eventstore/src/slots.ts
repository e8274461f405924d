import { createHash } from 'node:crypto';

/**
 * How many logical slots a sharded store's keys fall into. Fixed for the life of the data: shards
 * come and go by taking slots over, never by changing how keys hash. 256 slots spread over up to
 * 256 shards; over 4 shards each holds 64.
 */
export const SLOT_COUNT = 256;

/**
 * The slot of a partition key (orders: the customer id): the first four bytes of the SHA-256 of
 * its UTF-8 bytes, read as a big-endian unsigned 32-bit integer, modulo {@link SLOT_COUNT}.
 * SHA-256 because every language and database has it (a shard can be checked from `psql` with
 * `get_byte(sha256(convert_to(key, 'UTF8')), 3)`), and it spreads any id format evenly.
 */
export function slotOf(key: string): number {
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) % SLOT_COUNT;
}

/** A slot as two lowercase hex digits, the form ids carry it in. */
export const slotHex = (slot: number): string => slot.toString(16).padStart(2, '0');

/**
 * Parses a slot list such as `0-63,128,200-210` into sorted, distinct slots. Throws a RangeError
 * naming the bad part: out of range, reversed, or not a number.
 */
export function parseSlots(text: string): number[] {
  const slots = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d{1,3})(?:-(\d{1,3}))?$/.exec(part);
    if (!m) throw new RangeError(`slot list part ${JSON.stringify(part)} is not N or N-M`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from > to || to >= SLOT_COUNT) throw new RangeError(`slot range ${part} is outside 0-${SLOT_COUNT - 1} or reversed`);
    for (let s = from; s <= to; s++) slots.add(s);
  }
  return [...slots].sort((a, b) => a - b);
}

/** The inverse of {@link parseSlots}: runs of consecutive slots as N-M. */
export function formatSlots(slots: readonly number[]): string {
  const sorted = [...new Set(slots)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
