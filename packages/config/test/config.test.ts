import {
  ConfigError,
  commonSubgraphEnv,
  flag,
  loadConfig,
  loadPaymentsProviderConfig,
  loadSubgraphConfig,
  optionalUrl,
  port,
  z,
} from '../src';

describe('loadConfig', () => {
  const schema = z.object({ PORT: port(4001), DEBUG: flag(false), DB: optionalUrl('postgres', 'postgresql') });

  it('applies defaults and coerces values', () => {
    expect(loadConfig(schema, {})).toEqual({ PORT: 4001, DEBUG: false, DB: undefined });
    expect(loadConfig(schema, { PORT: '0', DEBUG: 'yes', DB: 'postgres://x/y' })).toEqual({
      PORT: 0,
      DEBUG: true,
      DB: 'postgres://x/y',
    });
  });

  it('fails naming every bad variable and what it received', () => {
    let error: unknown;
    try {
      loadConfig(schema, { PORT: 'eighty', DB: 'mysql://x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.variables).toEqual(['PORT', 'DB']);
    expect(configError.message).toContain('PORT');
    expect(configError.message).toContain('"eighty"');
    expect(configError.message).toContain('DB: must be a URL with protocol postgres or postgresql');
  });

  it('treats an empty optional string as unset', () => {
    const cfg = loadConfig(z.object(commonSubgraphEnv), { REDIS_URL: '' });
    expect(cfg.REDIS_URL).toBeUndefined();
    expect(cfg.PAGE_MAX).toBe(100);
  });
});

describe('loadSubgraphConfig', () => {
  it('reads the service-specific port and database and resolves DATA_DIR', () => {
    const cfg = loadSubgraphConfig('reviews', 4004, {
      REVIEWS_PORT: '5004',
      REVIEWS_DATABASE_URL: 'postgres://u@h/db',
      ACCOUNTS_DATABASE_URL: 'postgres://u@h/other',
      INIT_CWD: '/srv/shop',
      SEED: 'false',
    });
    expect(cfg).toMatchObject({
      service: 'reviews',
      port: 5004,
      databaseUrl: 'postgres://u@h/db',
      dataDir: '/srv/shop/.data',
      seed: false,
    });
  });

  it('names the variable at fault', () => {
    expect(() => loadSubgraphConfig('reviews', 4004, { REVIEWS_DATABASE_URL: 'mysql://x/y' })).toThrow(/REVIEWS_DATABASE_URL/);
    expect(() => loadSubgraphConfig('reviews', 4004, { PAGE_MAX: '0' })).toThrow(/PAGE_MAX/);
  });
});

describe('loadPaymentsProviderConfig', () => {
  it('has safe defaults: a simulator that answers every call, fast', () => {
    expect(loadPaymentsProviderConfig({})).toEqual({
      latencyMs: 20,
      declineRate: 0,
      timeoutRate: 0,
      timeoutChargedRate: 0,
      seed: 'shop',
      maxAttempts: 5,
      callTimeoutMs: 2000,
    });
  });

  it('reads every PSP_ variable and refuses a rate outside 0-1, naming it', () => {
    expect(
      loadPaymentsProviderConfig({
        PSP_LATENCY_MS: '0',
        PSP_DECLINE_RATE: '0.3',
        PSP_TIMEOUT_RATE: '0.1',
        PSP_TIMEOUT_CHARGED_RATE: '1',
        PSP_SEED: 'bench',
        PSP_MAX_ATTEMPTS: '3',
        PSP_CALL_TIMEOUT_MS: '250',
      }),
    ).toEqual({
      latencyMs: 0,
      declineRate: 0.3,
      timeoutRate: 0.1,
      timeoutChargedRate: 1,
      seed: 'bench',
      maxAttempts: 3,
      callTimeoutMs: 250,
    });
    expect(() => loadPaymentsProviderConfig({ PSP_DECLINE_RATE: '1.5' })).toThrow(/PSP_DECLINE_RATE: must be at most 1/);
    expect(() => loadPaymentsProviderConfig({ PSP_MAX_ATTEMPTS: '0' })).toThrow(/PSP_MAX_ATTEMPTS/);
  });
});
