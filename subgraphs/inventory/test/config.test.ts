import { ConfigError, loadInventoryConfig } from '@shop/config';

describe("inventory's settings", () => {
  it('sweeps every second unless RESERVATION_SWEEP_INTERVAL_MS says otherwise', () => {
    expect(loadInventoryConfig({})).toEqual({ sweepIntervalMs: 1000 });
    expect(loadInventoryConfig({ RESERVATION_SWEEP_INTERVAL_MS: '250' })).toEqual({ sweepIntervalMs: 250 });
  });

  it('refuses an interval that is not a positive integer, naming the variable', () => {
    for (const value of ['0', '-5', '1.5', 'soon']) {
      expect(() => loadInventoryConfig({ RESERVATION_SWEEP_INTERVAL_MS: value })).toThrow(ConfigError);
      expect(() => loadInventoryConfig({ RESERVATION_SWEEP_INTERVAL_MS: value })).toThrow(/RESERVATION_SWEEP_INTERVAL_MS/);
    }
  });
});
