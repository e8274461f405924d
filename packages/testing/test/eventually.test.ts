import { eventually } from '../src';

describe('eventually', () => {
  it('returns the first value that satisfies the condition', async () => {
    let n = 0;
    const value = await eventually(
      async () => ++n,
      (v) => v >= 3,
      5_000,
      1,
    );
    expect(value).toBe(3);
  });

  it('throws when the time runs out, naming the last value read', async () => {
    let n = 0;
    await expect(
      eventually(
        async () => ({ reads: ++n }),
        () => false,
        50,
        5,
      ),
    ).rejects.toThrow(/not done after 50 ms; last value read: \{"reads":\d+\}/);
    expect(n).toBeGreaterThan(1);
  });
});
