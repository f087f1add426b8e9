// The team dashboard (/app/) in a real browser (Debian's headless Chromium through playwright-core),
// on the demo data, built only on the public GraphQL API: the demo member signs in, sees a
// program's counters; a conversion recorded through the API appears in the live feed and the
// counters within 2 s; a reward is approved from the pending list; a payout is created. A member
// is invited and joins through the invitation link; TEST/LIVE switch; sign-out. An operator opens
// it with an access token in the fragment instead; a READ_ONLY one gets no buttons. Every page is
// watched (test/helpers/browser.ts): a request to another host, a CSP violation or a console error
// fails the test. The test setup builds dist/web when src/web changed.
// Screenshots of each page go to test/artifacts/ when CI or SCREENSHOTS=1 is set.
import http from 'node:http';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { seedDemo, type DemoSeedResult } from '../src/modules/workspace/demo-seed.js';
import { graphql } from './gql/index.js';
import { describeBrowser, PHONE, screenshot, useBrowser } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const KEY_IDS = graphql(`
  query DashboardTestKeys {
    apiKeys(first: 10) {
      edges {
        node {
          accessKeyId
          role
        }
      }
    }
  }
`);

const ISSUE = graphql(`
  mutation DashboardTestIssue($input: IssueAccessTokenInput!) {
    issueAccessToken(input: $input) {
      accessToken
      userErrors {
        code
        message
      }
    }
  }
`);

const LINKS = graphql(`
  query DashboardTestLinks {
    partner(externalId: "ada") {
      id
      links {
        code
        program {
          id
          name
        }
      }
    }
  }
`);

const RECORD = graphql(`
  mutation DashboardTestRecord($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        id
        status
      }
      rewards {
        id
        status
      }
      userErrors {
        code
        message
      }
    }
  }
`);

const CREATE_KEY = graphql(`
  mutation DashboardTestCreateKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      apiKey {
        accessKeyId
      }
      secret
    }
  }
`);

const CREATE_ENDPOINT = graphql(`
  mutation DashboardTestCreateEndpoint($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
      webhookEndpoint {
        id
      }
      userErrors {
        code
        message
      }
    }
  }
`);

const REWARD = graphql(`
  query DashboardTestReward($id: ID!) {
    node(id: $id) {
      ... on Reward {
        status
      }
    }
  }
`);

const PAYOUTS = graphql(`
  query DashboardTestPayouts($partnerId: ID!) {
    payouts(first: 10, filter: { partnerId: $partnerId, status: [PENDING] }) {
      totalCount
      edges {
        node {
          amount {
            amount
            currency
          }
        }
      }
    }
  }
`);

describeBrowser('the team dashboard in headless Chromium', () => {
  let server: TestServer;
  let demo: DemoSeedResult;
  let tab: Page;
  let token: string;
  /** Operations the page subscribed to over the WebSocket (their `subscribe` messages). */
  let subscribed: Promise<void>;
  const browser = useBrowser(() => [server.url]);

  beforeAll(async () => {
    // Webhooks go to a receiver in this process (a private address).
    server = await startTestServer({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' });
    demo = await seedDemo(server.testDb.db);
    // An operator's short-lived access token, from the demo ADMIN key pair.
    const keys = await server.gql(KEY_IDS, {}, demo.keys.test);
    const accessKeyId = keys.data!.apiKeys.edges.find((e) => e.node.role === 'ADMIN')!.node.accessKeyId;
    const issued = await server.gql(ISSUE, { input: { accessKeyId, secret: demo.keys.test } });
    token = issued.data!.issueAccessToken.accessToken!;
  });
  afterAll(async () => {
    await server?.close();
  });

  beforeEach(async () => {
    tab = await browser.open();
    tab.setDefaultTimeout(15_000);
    subscribed = new Promise((resolve) => {
      tab.on('websocket', (socket) =>
        socket.on('framesent', ({ payload }) => {
          if (String(payload).includes('subscription OverviewFeedLive')) resolve();
        }),
      );
    });
  });

  const shot = (name: string) => screenshot(tab, name);

  /** Signs in as the demo member through the sign-in page. */
  async function signIn(route = '/') {
    await tab.goto(`${server.url}/app/`);
    const form = tab.getByRole('form', { name: 'Sign in' });
    await form.getByLabel('Email').fill(demo.member.email);
    await form.getByLabel('Password').fill(demo.member.password);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('navigation', { name: 'Dashboard' }).waitFor();
    await tab.getByText(demo.member.email, { exact: true }).waitFor();
    const cookies = await tab.context().cookies();
    expect(cookies.find((c) => c.name === 'refgraph_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    if (route !== '/') await tab.goto(`${server.url}/app/#${route}`);
  }

  /** Opens the dashboard with the token in the fragment; the token leaves the address at once. */
  async function open(route = '/', credential = token) {
    await tab.goto(`${server.url}/app/#token=${encodeURIComponent(credential)}`);
    await tab.getByRole('navigation', { name: 'Dashboard' }).waitFor();
    expect(new URL(tab.url()).hash).toBe('#/');
    if (route !== '/') await tab.goto(`${server.url}/app/#${route}`);
  }

  it('a member signs in and sees the programs’ counters; a conversion recorded through the API reaches the feed and the counters within 2 s', async () => {
    await signIn();
    await tab.getByText('Test mode', { exact: true }).waitFor();
    const card = tab.locator('article[data-program="Refer a friend"]');
    const conversions = card.locator('[data-counter="conversions"] dd');
    await conversions.waitFor();
    await card.getByText('live', { exact: true }).waitFor();
    // The feed has subscribed (the page sent its subscribe message on the WebSocket).
    await subscribed;
    const before = Number((await conversions.textContent())!.replace(/\D/g, ''));
    await tab.locator('article[data-program="Refer a friend"] .chart canvas').first().waitFor();
    await tab
      .getByText(/No conversions or reward changes yet|purchase|signup/)
      .first()
      .waitFor();
    await shot('dashboard-overview');

    const links = await server.gql(LINKS, {}, demo.keys.test);
    const link = links.data!.partner!.links.find((l) => l.program.name === 'Refer a friend')!;
    const customer = `browser-${Date.now()}`;
    const recorded = await server.gql(
      RECORD,
      {
        input: {
          idempotencyKey: customer,
          referredExternalId: customer,
          type: 'PURCHASE',
          code: link.code,
          amount: { amount: '120.00', currency: 'USD' },
        },
      },
      demo.keys.test,
    );
    expect(recorded.data?.recordConversion.userErrors).toEqual([]);
    expect(recorded.data?.recordConversion.conversion?.status).toBe('ACCEPTED');
    // Within 2 s of the API's answer: the feed's new line and the program's counter.
    await tab.locator('.feed-item', { hasText: customer }).waitFor({ timeout: 2_000 });
    await card
      .locator('[data-counter="conversions"] dd', { hasText: new RegExp(`^${before + 1}$`) })
      .waitFor({ timeout: 2_000 });
    await tab.locator('.feed-item', { hasText: customer }).getByText('$120.00').waitFor();
    await shot('dashboard-overview-live');
  });

  it('approves a reward from the pending list, then creates its payout', async () => {
    const links = await server.gql(LINKS, {}, demo.keys.test);
    const ada = links.data!.partner!;
    const link = ada.links.find((l) => l.program.name === 'Refer a friend')!;
    const customer = `pending-${Date.now()}`;
    const recorded = await server.gql(
      RECORD,
      {
        input: {
          idempotencyKey: customer,
          referredExternalId: customer,
          type: 'PURCHASE',
          code: link.code,
          amount: { amount: '80.00', currency: 'USD' },
        },
      },
      demo.keys.test,
    );
    const reward = recorded.data!.recordConversion.rewards.find((r) => r.status === 'CREATED')!;
    expect(reward).toBeDefined();

    await signIn('/pending');
    const section = tab.getByRole('region', { name: /^Rewards awaiting approval/ });
    const box = section.getByRole('checkbox', { name: new RegExp(customer) });
    await box.check();
    await shot('dashboard-pending');
    await section.getByRole('button', { name: 'Approve selected' }).click();
    await section.getByText('1 reward(s) approved.').waitFor();
    await box.waitFor({ state: 'detached' });
    const after = await server.gql(REWARD, { id: reward.id }, demo.keys.test);
    expect(after.data?.node).toEqual({ status: 'APPROVED' });

    const pendingBefore = (await server.gql(PAYOUTS, { partnerId: ada.id }, demo.keys.test)).data!.payouts.totalCount;
    await tab.getByRole('link', { name: 'Payouts' }).click();
    await tab.getByRole('heading', { name: 'Payouts', level: 1 }).waitFor();
    const create = tab.getByRole('region', { name: 'Create payouts' });
    await create.getByLabel('Currency').fill('USD');
    await create.getByLabel('Program').selectOption({ label: 'Refer a friend' });
    await create.getByRole('button', { name: 'Create payouts' }).click();
    await create.getByText(/\d+ payout\(s\) created/).waitFor();
    const payouts = await server.gql(PAYOUTS, { partnerId: ada.id }, demo.keys.test);
    expect(payouts.data!.payouts.totalCount).toBe(pendingBefore + 1);
    const list = tab.getByRole('region', { name: /^All payouts/ });
    await list
      .getByRole('button', { name: /^Mark paid: .* to Ada Lovelace$/ })
      .first()
      .waitFor();
    await shot('dashboard-payouts');
  });

  it('lists and searches partners, opens a partner’s page, an endpoint’s delivery log; creates an API key', async () => {
    // A webhook endpoint that has received a delivery.
    let delivered!: () => void;
    const received = new Promise<void>((resolve) => {
      delivered = resolve;
    });
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(204).end();
        delivered();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as { port: number }).port;
    try {
      const endpoint = await server.gql(
        CREATE_ENDPOINT,
        { input: { url: `http://127.0.0.1:${port}/hooks`, eventTypes: ['conversion.recorded'] } },
        demo.keys.test,
      );
      expect(endpoint.data?.createWebhookEndpoint.userErrors).toEqual([]);
      const links = await server.gql(LINKS, {}, demo.keys.test);
      const code = links.data!.partner!.links[0]!.code;
      const customer = `hooked-${Date.now()}`;
      await server.gql(
        RECORD,
        { input: { idempotencyKey: customer, referredExternalId: customer, type: 'SIGNUP', code } },
        demo.keys.test,
      );
      await received;
    } finally {
      receiver.close();
    }

    await open('/partners');
    await tab.getByRole('link', { name: 'Grace Hopper' }).waitFor();
    await tab.getByRole('searchbox', { name: 'Search' }).fill('ada');
    await tab.getByRole('link', { name: 'Grace Hopper' }).waitFor({ state: 'detached' });
    await shot('dashboard-partners');
    await tab.getByRole('link', { name: 'Ada Lovelace' }).click();
    await tab.getByRole('heading', { name: /Ada Lovelace/, level: 1 }).waitFor();
    await tab
      .getByRole('region', { name: 'Links' })
      .getByText(/ada-friends-/)
      .waitFor();
    await tab
      .getByRole('region', { name: 'Ledger statement' })
      .getByRole('row', { name: /Closing/ })
      .waitFor();
    await shot('dashboard-partner');
    await tab.getByRole('link', { name: 'Webhooks' }).click();
    await tab.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await shot('dashboard-webhooks');
    await tab.getByRole('link', { name: /\/hooks$/ }).click();
    await tab
      .getByRole('region', { name: /^Delivery log/ })
      .getByText('conversion.recorded')
      .first()
      .waitFor();
    await shot('dashboard-webhook-log');
    await tab.getByRole('link', { name: 'API keys' }).click();
    const create = tab.getByRole('region', { name: 'Create a key' });
    await create.getByLabel('Name').fill('Reporting');
    await create.getByRole('button', { name: /Create test key/ }).click();
    await create.locator('[data-secret]', { hasText: /^rg_test_/ }).waitFor();
    await tab.getByRole('cell', { name: 'Reporting', exact: true }).waitFor();
    await shot('dashboard-api-keys');
  });

  it('gives a READ_ONLY token every page but no button that changes anything', async () => {
    const created = await server.gql(CREATE_KEY, { input: { name: 'viewer', role: 'READ_ONLY' } }, demo.keys.test);
    const { apiKey, secret } = created.data!.createApiKey;
    const issued = await server.gql(ISSUE, { input: { accessKeyId: apiKey!.accessKeyId, secret: secret! } });
    // A token pasted into the address of an open dashboard replaces the one it had.
    await open();
    await tab.getByText('Admin', { exact: true }).waitFor();
    await tab.goto(`${server.url}/app/#token=${encodeURIComponent(issued.data!.issueAccessToken.accessToken!)}`);
    await tab.getByText('Read-only', { exact: true }).waitFor();
    expect(new URL(tab.url()).hash).toBe('#/');
    await tab.getByRole('link', { name: 'Pending' }).click();
    const rewards = tab.getByRole('region', { name: /^Rewards awaiting approval/ });
    await rewards.getByRole('row').nth(1).waitFor();
    expect(await tab.getByRole('checkbox').count()).toBe(0);
    expect(await tab.getByRole('button', { name: /Approve|Reject/ }).count()).toBe(0);
    await tab.getByRole('link', { name: 'Payouts' }).click();
    await tab
      .getByRole('region', { name: /^All payouts/ })
      .getByRole('row')
      .nth(1)
      .waitFor();
    expect(await tab.getByRole('button', { name: /Create payouts|Mark paid|Mark failed|Cancel/ }).count()).toBe(0);
    // ADMIN-only pages are not offered.
    expect(await tab.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    expect(await tab.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
  });

  it('invites a member who joins through the link; switches to LIVE mode; signs out; an ended session leads back to the sign-in', async () => {
    await signIn('/members');
    await tab.getByRole('cell', { name: /^Demo Admin/ }).waitFor();
    const invite = tab.getByRole('region', { name: 'Invite a member' });
    const email = `new-${Date.now()}@example.com`;
    await invite.getByLabel('Email').fill(email);
    await invite.getByLabel('Name (optional)').fill('New Colleague');
    await invite.getByRole('button', { name: 'Invite' }).click();
    const link = (await invite.locator('[data-invitation]').textContent())!;
    expect(link).toMatch(/\/app\/#invitation=rgi_/);
    await tab.getByRole('cell', { name: /^New Colleague/ }).waitFor();
    await shot('dashboard-members');

    // The invitee opens the link (on this server: PUBLIC_URL is another address in tests).
    const page = await browser.open();
    page.setDefaultTimeout(15_000);
    await page.goto(`${server.url}/app/${new URL(link).hash}`);
    const form = page.getByRole('form', { name: 'Accept the invitation' });
    await form.getByLabel('Password', { exact: true }).fill('a long enough password');
    await form.getByLabel('Password, again').fill('a long enough password');
    await form.getByRole('button', { name: /Set password/ }).click();
    await page.getByText(email, { exact: true }).waitFor();
    expect(new URL(page.url()).hash).toBe('#/');
    await page.getByText('Read-only', { exact: true }).waitFor();

    await tab.getByRole('button', { name: 'Switch to live mode' }).click();
    await tab.getByText('Live mode', { exact: true }).waitFor();
    await tab.getByRole('link', { name: 'Overview' }).click();
    await tab.getByText(/No programs yet in this mode/).waitFor();
    await tab.getByRole('button', { name: 'Switch to test mode' }).click();
    await tab.locator('article[data-program="Refer a friend"]').waitFor();
    await tab.getByRole('button', { name: 'Sign out' }).click();
    await tab.getByRole('form', { name: 'Sign in' }).waitFor();
    expect((await tab.context().cookies()).find((c) => c.name === 'refgraph_session')).toBeUndefined();
    await shot('dashboard-sign-in');

    // A session that ends under the page (here: its cookies are gone) leads back to the sign-in.
    await signIn();
    await tab.context().clearCookies();
    await tab.getByRole('link', { name: 'Pending' }).click();
    await tab.getByRole('button', { name: 'Sign in again' }).first().click();
    await tab.getByRole('form', { name: 'Sign in' }).waitFor();
  });

  it('fits a phone: the nav becomes a top bar', async () => {
    await tab.setViewportSize(PHONE);
    await open();
    await tab.locator('article[data-program="Refer a friend"] [data-counter="conversions"] dd').waitFor();
    const nav = await tab.getByRole('navigation', { name: 'Dashboard' }).boundingBox();
    const main = await tab.locator('main#main').boundingBox();
    expect(nav!.y).toBeLessThan(main!.y); // above the page, not beside it
    expect(main!.width).toBeGreaterThan(350);
    const scroll = await tab.evaluate(() => document.documentElement.scrollWidth);
    expect(scroll).toBeLessThanOrEqual(390);
    await shot('dashboard-phone');
  });
});
