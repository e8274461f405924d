// Shared jest settings: @swc/jest transpiles TypeScript (about 5x faster than ts-jest);
// type-checking is its own turbo task (`tsc --noEmit`).
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // get-port and jose are ES modules only: jest's require needs them compiled to CommonJS like our sources.
  transformIgnorePatterns: ['/node_modules/(?!(get-port|jose)/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60000,
};
