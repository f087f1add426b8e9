// The dashboard's shell: the credential, the urql client built from it, the viewer, the left nav
// (a top bar on a phone) and the page the fragment names.
import { Provider, useQuery } from '@urql/preact';
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { graphql } from '../gql/index.js';
import { createRefgraphClient, type Credential } from '../lib/client.js';
import { currentCredential, forgetToken, takeTokenFromFragment } from './auth.js';
import { href, type Route, useRoute } from './router.js';
import { Loading, RequestError } from './ui/feedback.js';
import { ViewerContext, type ViewerInfo } from './viewer.js';
import { ApiKeysPage } from './pages/api-keys.js';
import { OverviewPage } from './pages/overview.js';
import { PartnerPage, PartnersPage } from './pages/partners.js';
import { PayoutsPage } from './pages/payouts.js';
import { PendingPage } from './pages/pending.js';
import { WebhookPage, WebhooksPage } from './pages/webhooks.js';
import { SignInPage } from './pages/sign-in.js';

const ViewerQuery = graphql(`
  query DashboardViewer {
    viewer {
      role
      mode
      workspace {
        id
        name
      }
    }
  }
`);

export function App() {
  takeTokenFromFragment();
  // A new credential (sign-in, sign-out, another mode) means a new client: a fresh cache and a new
  // WebSocket (the old one closes when its last subscription is unmounted).
  const [session, setSession] = useState<{ credential: Credential; epoch: number }>(() => ({
    credential: currentCredential(),
    epoch: 0,
  }));
  const client = useMemo(() => createRefgraphClient(session.credential), [session]);
  const restart = () => setSession((s) => ({ credential: currentCredential(), epoch: s.epoch + 1 }));
  return (
    <Provider value={client}>
      <Shell key={session.epoch} credential={session.credential} restart={restart} />
    </Provider>
  );
}

const NAV: Array<{ path: string; label: string; pages: Route['page'][]; adminOnly?: boolean }> = [
  { path: '/', label: 'Overview', pages: ['overview'] },
  { path: '/pending', label: 'Pending', pages: ['pending'] },
  { path: '/partners', label: 'Partners', pages: ['partners', 'partner'] },
  { path: '/payouts', label: 'Payouts', pages: ['payouts'] },
  { path: '/webhooks', label: 'Webhooks', pages: ['webhooks', 'webhook'], adminOnly: true },
  { path: '/api-keys', label: 'API keys', pages: ['api-keys'], adminOnly: true },
];

function Shell({ credential, restart }: { credential: Credential; restart: () => void }) {
  const route = useRoute();
  const [result] = useQuery({ query: ViewerQuery });
  const viewer: ViewerInfo | null = useMemo(() => {
    const v = result.data?.viewer;
    return v ? { role: v.role, mode: v.mode, workspaceName: v.workspace.name, memberEmail: null } : null;
  }, [result.data]);

  if (result.fetching && !result.data) return <Loading what="the dashboard" />;
  if (!viewer) {
    const unauthenticated =
      !result.error ||
      result.error.graphQLErrors.some((e) => e.extensions?.['code'] === 'UNAUTHENTICATED') ||
      result.error.response?.status === 401;
    return unauthenticated ? (
      <SignInPage hadToken={credential.kind === 'token'} onSignedIn={restart} />
    ) : (
      <main class="signin">
        <RequestError error={result.error} />
      </main>
    );
  }
  const signOut = () => {
    forgetToken();
    restart();
  };
  return (
    <ViewerContext.Provider value={viewer}>
      <button type="button" class="skip" onClick={skipToMain}>
        Skip to content
      </button>
      <div class="shell">
        <header class="sidebar">
          <div class="brand">
            <span class="logo" aria-hidden="true">
              ◆
            </span>
            <span>refgraph</span>
            <ModeBadge mode={viewer.mode} />
          </div>
          <nav aria-label="Dashboard">
            <ul>
              {NAV.filter((item) => !item.adminOnly || viewer.role === 'ADMIN').map((item) => (
                <li key={item.path}>
                  <a href={href(item.path)} aria-current={item.pages.includes(route.page) ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div class="who">
            <span class="workspace" title="Workspace">
              {viewer.workspaceName}
            </span>
            <span class="role">{viewer.role === 'ADMIN' ? 'Admin' : 'Read-only'}</span>
            {credential.kind === 'token' && (
              <button type="button" class="link-button" onClick={signOut}>
                Forget token
              </button>
            )}
          </div>
        </header>
        <main id="main" tabIndex={-1}>
          <Page route={route} />
        </main>
      </div>
    </ViewerContext.Provider>
  );
}

function skipToMain() {
  document.getElementById('main')?.focus();
}

export function ModeBadge({ mode }: { mode: 'TEST' | 'LIVE' }) {
  return (
    <span class={`mode mode-${mode.toLowerCase()}`} title={`You are looking at ${mode} mode data`}>
      {mode === 'TEST' ? 'Test mode' : 'Live mode'}
    </span>
  );
}

function Page({ route }: { route: Route }): ComponentChildren {
  switch (route.page) {
    case 'overview':
      return <OverviewPage />;
    case 'pending':
      return <PendingPage />;
    case 'partners':
      return <PartnersPage />;
    case 'partner':
      return <PartnerPage id={route.id} />;
    case 'payouts':
      return <PayoutsPage />;
    case 'webhooks':
      return <WebhooksPage />;
    case 'webhook':
      return <WebhookPage id={route.id} />;
    case 'api-keys':
      return <ApiKeysPage />;
    case 'members':
    case 'invitation':
    case 'not-found':
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page here. <a href={href('/')}>Back to the overview</a>.
          </p>
        </section>
      );
  }
}
