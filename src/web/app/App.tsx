// The dashboard's shell: the credential, the urql client built from it, the viewer, the left nav
// (a top bar on a phone) and the page the fragment names.
import { Provider, useMutation, useQuery } from '@urql/preact';
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { graphql } from '../gql/index.js';
import { createRefgraphClient, type Credential } from '../lib/client.js';
import { currentCredential, forgetToken, takeTokenFromFragment } from './auth.js';
import { href, type Route, useRoute } from './router.js';
import {
  Loading,
  RequestError,
  StartOver,
  UserErrors,
  credentialRefused,
  mutationErrors,
  type UserErrorLike,
} from './ui/feedback.js';
import { ViewerContext, type ViewerInfo } from './viewer.js';
import { ApiKeysPage } from './pages/api-keys.js';
import { OverviewPage } from './pages/overview.js';
import { PartnerPage, PartnersPage } from './pages/partners.js';
import { PayoutsPage } from './pages/payouts.js';
import { PendingPage } from './pages/pending.js';
import { WebhookPage, WebhooksPage } from './pages/webhooks.js';
import { MembersPage } from './pages/members.js';
import { InvitationPage, SignInPage } from './pages/sign-in.js';

const ViewerQuery = graphql(`
  query DashboardViewer {
    viewer {
      role
      mode
      workspace {
        id
        name
      }
      member {
        id
        email
        name
      }
    }
  }
`);

const SignOut = graphql(`
  mutation DashboardSignOut {
    signOut {
      signedOut
    }
  }
`);

const SwitchMode = graphql(`
  mutation DashboardSwitchMode($input: SwitchModeInput!) {
    switchMode(input: $input) {
      viewer {
        mode
      }
      userErrors {
        code
        message
        field
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
  // A `#token=` pasted into the address of an open dashboard: take it, and start over with it.
  useEffect(() => {
    const onHash = () => {
      if (takeTokenFromFragment()) restart();
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
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
  { path: '/members', label: 'Members', pages: ['members'] },
];

function Shell({ credential, restart }: { credential: Credential; restart: () => void }) {
  const route = useRoute();
  const [result] = useQuery({ query: ViewerQuery, pause: route.page === 'invitation' });
  const [, signOutMutation] = useMutation(SignOut);
  const viewer: ViewerInfo | null = useMemo(() => {
    const v = result.data?.viewer;
    return v
      ? { role: v.role, mode: v.mode, workspaceName: v.workspace.name, memberEmail: v.member?.email ?? null }
      : null;
  }, [result.data]);

  const signedIn = () => {
    forgetToken();
    restart();
  };
  if (route.page === 'invitation') return <InvitationPage token={route.token} onSignedIn={signedIn} />;
  if (result.fetching && !result.data) return <Loading what="the dashboard" />;
  if (!viewer) {
    const unauthenticated = !result.error || credentialRefused(result.error);
    return unauthenticated ? (
      <SignInPage hadToken={credential.kind === 'token'} onSignedIn={signedIn} />
    ) : (
      <main class="signin">
        <RequestError error={result.error} />
      </main>
    );
  }
  const signOut = async () => {
    if (credential.kind === 'session') await signOutMutation({});
    forgetToken();
    restart();
  };
  const startOver = () => {
    forgetToken();
    restart();
  };
  return (
    <StartOver.Provider value={startOver}>
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
            {credential.kind === 'session' && <ModeSwitch mode={viewer.mode} onSwitched={restart} />}
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
              {viewer.memberEmail && <span class="member">{viewer.memberEmail}</span>}
              <span class="role">{viewer.role === 'ADMIN' ? 'Admin' : 'Read-only'}</span>
              <button type="button" class="link-button" onClick={signOut}>
                {credential.kind === 'token' ? 'Forget token' : 'Sign out'}
              </button>
            </div>
          </header>
          <main id="main" tabIndex={-1}>
            <Page route={route} />
          </main>
        </div>
      </ViewerContext.Provider>
    </StartOver.Provider>
  );
}

function skipToMain() {
  document.getElementById('main')?.focus();
}

/** TEST ↔ LIVE for a member's session (switchMode); then a new client: fresh cache, new WebSocket. */
function ModeSwitch({ mode, onSwitched }: { mode: 'TEST' | 'LIVE'; onSwitched: () => void }) {
  const [state, switchMode] = useMutation(SwitchMode);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const other = mode === 'TEST' ? 'LIVE' : 'TEST';
  return (
    <div class="mode-switch">
      <button
        type="button"
        class="small"
        disabled={state.fetching}
        onClick={async () => {
          const response = await switchMode({ input: { mode: other } });
          const found = mutationErrors(response, response.data?.switchMode.userErrors);
          setErrors(found);
          if (found.length === 0) onSwitched();
        }}
      >
        Switch to {other === 'TEST' ? 'test' : 'live'} mode
      </button>
      <UserErrors errors={errors} />
    </div>
  );
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
      return <MembersPage />;
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
