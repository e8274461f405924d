// `npm test` runs every workspace's tests, every tier, in one jest run.
// Tiers by suffix: *.test.ts needs no server, *.int.test.ts needs PostgreSQL/Redis/RabbitMQ,
// *.e2e.test.ts drives the stack over HTTP.
const { existsSync, readdirSync } = require('node:fs');
const path = require('node:path');
const preset = require('./jest.preset.js');

const children = (dir) =>
  existsSync(path.join(__dirname, dir)) ? readdirSync(path.join(__dirname, dir)).map((name) => `${dir}/${name}`) : [];
const dirs = [...children('packages'), ...children('subgraphs'), 'gateway', '.'].filter((dir) =>
  existsSync(path.join(__dirname, dir, 'test')),
);

/** @type {import('jest').Config} */
module.exports = {
  projects: dirs.map((dir) => ({
    ...preset,
    displayName: dir === '.' ? 'root' : dir,
    rootDir: dir === '.' ? '<rootDir>' : `<rootDir>/${dir}`,
  })),
  maxWorkers: 2,
  // A global option: jest ignores testTimeout inside project configs. Process-spawning tests
  // (services mode, the gateway's index.ts) need more than the 5 s default on a loaded machine.
  testTimeout: 60_000,
};
