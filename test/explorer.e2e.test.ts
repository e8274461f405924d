// The explorer in a real browser (Debian's chromium, driven by playwright-core) against the
// embedded stack: the page renders, runs an operation from its tabs, shows the result, opens the
// docs from introspection, and in all of that the browser asks nothing of any host but the
// gateway's. Every request leaving for elsewhere is aborted and recorded, and the test fails on it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { type Stack, startStack } from '@shop/stack';
import { graphqlClient } from '@shop/testing';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve(__dirname, '..', 'docs', 'explorer.png');
/** Generous: a cold chromium on a loaded CI machine takes seconds to parse 1 MB of GraphiQL. */
const UI_TIMEOUT = 30_000;

jest.setTimeout(120_000);

/** Requests that stay on this machine; `data:` and `blob:` URLs never reach the network. */
function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

let stack: Stack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base: string;
const requests: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does`);
  }
  stack = await startStack({
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users: 100, products: 100, reviews: 500 },
  });
  base = stack.gatewayUrl.replace(/\/graphql$/, '');
  // launch() gives the browser a fresh temporary profile and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : route.abort('blockedbyclient')));
  page = await context.newPage();
  page.on('request', (request) => requests.push(request.url()));
  // A blocked request, a Content-Security-Policy violation or a script error shows up here.
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the explorer in a browser, offline', () => {
  it('runs an operation from its tabs and shows the result the API gives', async () => {
    // The value to look for, fetched independently of the browser.
    const api = graphqlClient(stack.gatewayUrl);
    const expected = (await api.query('{ topProducts(first: 5) { name } }')) as { data?: { topProducts: { name: string }[] } };
    const topName = expected.data?.topProducts[0]?.name;
    expect(topName).toEqual(expect.any(String));

    const response = await page.goto(`${base}/explorer`);
    expect(response?.status()).toBe(200);
    await page.locator('.graphiql-container').waitFor({ timeout: UI_TIMEOUT });

    // Every operation in operations/ is a tab; the first is selected.
    const tabs = page.locator('.graphiql-tab');
    await tabs.first().waitFor({ timeout: UI_TIMEOUT });
    const titles = (await tabs.locator('.graphiql-tab-button').allTextContents()).map((t) => t.trim());
    expect(titles).toEqual([
      'CategoryListing',
      'HomePage',
      'ProductPage',
      'UserPage',
      'CheckoutProgress',
      'CustomerOrders',
      'OrderHistory',
      'EditProfile',
      'SignIn',
      'WriteReview',
      'AddToOrder',
      'Checkout',
    ]);
    expect(await tabs.first().getAttribute('aria-selected')).toBe('true');
    // With its example variables, and a headers editor (for auth) beside them.
    await page.locator('.graphiql-editor-tool', { hasText: '"books"' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).waitFor({ timeout: UI_TIMEOUT });

    await page.locator('.graphiql-tab', { hasText: 'HomePage' }).click();
    await page.locator('.graphiql-tab[aria-selected="true"]', { hasText: 'HomePage' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-query-editor', { hasText: 'topProducts' }).waitFor({ timeout: UI_TIMEOUT });

    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response', { hasText: String(topName) }).waitFor({ timeout: UI_TIMEOUT });
    await page.screenshot({ path: await screenshotPath() });
  });

  it('opens the docs explorer from introspection', async () => {
    await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs
      .locator('a', { hasText: /^Query$/ })
      .first()
      .click({ timeout: UI_TIMEOUT });
    // The root Query type's fields come from the gateway's schema.
    await docs.getByText('topProducts', { exact: true }).first().waitFor({ timeout: UI_TIMEOUT });
  });

  it('signs in from the SignIn tab and sends the token with the requests after it, until it is forgotten', async () => {
    const badge = page.locator('.explorer-session');
    expect(await badge.getAttribute('data-session')).toBe('anonymous');
    await page.locator('.graphiql-tab', { hasText: 'SignIn' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'signIn' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-response', { hasText: 'accessToken' }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator('button.explorer-session', { hasText: /signed in as u\d+/ }).waitFor({ timeout: UI_TIMEOUT });

    const isGraphQL = (url: string) => new URL(url).pathname === '/graphql';
    await page.locator('.graphiql-tab', { hasText: 'HomePage' }).click();
    await page.locator('.graphiql-query-editor', { hasText: 'topProducts' }).waitFor({ timeout: UI_TIMEOUT });
    const [signedIn] = await Promise.all([
      page.waitForRequest((r) => isGraphQL(r.url()) && r.method() === 'POST' && (r.postData() ?? '').includes('topProducts')),
      page.locator('.graphiql-execute-button').click(),
    ]);
    expect(signedIn.headers().authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    await page.locator('button.explorer-session').click();
    await page.locator('.explorer-session[data-session="anonymous"]').waitFor({ timeout: UI_TIMEOUT });
    const [anonymous] = await Promise.all([
      page.waitForRequest((r) => isGraphQL(r.url()) && r.method() === 'POST' && (r.postData() ?? '').includes('topProducts')),
      page.locator('.graphiql-execute-button').click(),
    ]);
    expect(anonymous.headers().authorization).toBeUndefined();
  });

  it('asked nothing of any host but the gateway, and logged no error', () => {
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((url) => !isLocal(url))).toEqual([]);
    expect(requests.filter((url) => new URL(url).origin !== base && !url.startsWith('data:'))).toEqual([]);
    expect(problems).toEqual([]);
  });
});

/**
 * Where the screenshot goes: docs/explorer.png (the README's picture) only when asked with
 * UPDATE_SCREENSHOT=1, a temporary file otherwise, so that `npm test` rewrites no tracked file.
 */
async function screenshotPath(): Promise<string> {
  if (process.env.UPDATE_SCREENSHOT === '1') {
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    return SCREENSHOT;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'explorer-shot-'));
  return path.join(dir, 'explorer.png');
}
