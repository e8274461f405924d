import { DomainError, MAX_CURSOR_LENGTH, decodeCursor, encodeCursor, pageRequest, toConnection, validateInput } from '../src';
import { z } from 'zod';

describe('pagination', () => {
  it('round-trips cursors and rejects foreign ones', () => {
    expect(decodeCursor(encodeCursor('u00042'))).toBe('u00042');
    expect(() => decodeCursor('bm9wZQ')).toThrow(DomainError);
  });

  it('refuses cursors we did not issue, quoting only a short prefix of them', () => {
    const refusal = (cursor: string) => {
      try {
        decodeCursor(cursor);
      } catch (err) {
        return err as DomainError;
      }
      throw new Error('accepted');
    };
    const long = refusal('A'.repeat(10_000));
    expect(long).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(long.message).toBe(
      `after is not a cursor issued by this API (10000 characters, ours have at most ${MAX_CURSOR_LENGTH}); received "${'A'.repeat(40)}"… (10000 characters)`,
    );
    // Ours with a NUL in the key (it would reach the store as a comparison value), with stray
    // characters around it, or not canonical base64url: all refused.
    expect(refusal(encodeCursor('u0\u0000')).message).toMatch(/unknown encoding/);
    expect(refusal(`${encodeCursor('u00042')}!!`).message).toMatch(/unknown encoding/);
    expect(refusal(`${encodeCursor('u00042')}=`).message).toMatch(/unknown encoding/);
    expect(refusal(Buffer.from([0x63, 0x31, 0x3a, 0xff, 0xfe]).toString('base64url')).message).toMatch(/unknown encoding/);
  });

  it('bounds first', () => {
    expect(pageRequest(undefined, undefined, 100)).toEqual({ first: 10, after: undefined });
    expect(pageRequest(100, undefined, 100).first).toBe(100);
    expect(() => pageRequest(101, undefined, 100)).toThrow('between 0 and 100; received 101');
    expect(() => pageRequest(-1, undefined, 100)).toThrow(DomainError);
  });

  it('builds a connection from first + 1 rows', () => {
    const c = toConnection([{ id: 'a' }, { id: 'b' }, { id: 'c' }], 2, (r) => r.id);
    expect(c.edges.map((e) => e.node.id)).toEqual(['a', 'b']);
    expect(c.pageInfo).toEqual({ endCursor: encodeCursor('b'), hasNextPage: true });
    expect(toConnection([], 2, (r: { id: string }) => r.id).pageInfo).toEqual({ endCursor: null, hasNextPage: false });
  });

  it('names the field at fault in validation errors', () => {
    const schema = z.object({ rating: z.number().int().min(1, 'must be between 1 and 5') });
    expect(validateInput(schema, { rating: 3 })).toEqual({ rating: 3 });
    try {
      validateInput(schema, { rating: 0 });
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).field).toBe('input.rating');
      expect((err as DomainError).code).toBe('BAD_USER_INPUT');
    }
  });
});
