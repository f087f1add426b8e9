// Signing in (a team member's email and password, and the mode to look at) and accepting an
// invitation (`/app/#invitation=<token>`: choose a password, and you are signed in). Both set the
// session cookie (HttpOnly) and its CSRF cookie; the page then uses the session.
import { useMemo, useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import { createRefgraphClient } from '../../lib/client.js';
import { Empty, UserErrors, mutationErrors, type UserErrorLike } from '../ui/feedback.js';

const SignIn = graphql(`
  mutation DashboardSignIn($input: SignInInput!) {
    signIn(input: $input) {
      member {
        id
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

const AcceptInvitation = graphql(`
  mutation DashboardAcceptInvitation($input: AcceptInvitationInput!) {
    acceptInvitation(input: $input) {
      member {
        id
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

/** A client without a credential of its own (no stored token): for signIn and acceptInvitation. */
function useSessionClient() {
  return useMemo(() => createRefgraphClient({ kind: 'session' }), []);
}

export function SignInPage({ hadToken, onSignedIn }: { hadToken: boolean; onSignedIn: () => void }) {
  const client = useSessionClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [mode, setMode] = useState<'TEST' | 'LIVE'>('TEST');
  const [workspaceId, setWorkspaceId] = useState('');
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    const response = await client
      .mutation(SignIn, { input: { email: email.trim(), password, mode, workspaceId: workspaceId.trim() || null } })
      .toPromise();
    setBusy(false);
    const found = mutationErrors(response, response.data?.signIn.userErrors);
    setErrors(found);
    if (found.length === 0 && response.data?.signIn.member) onSignedIn();
  };
  return (
    <main class="signin" id="main">
      <h1>Sign in to refgraph</h1>
      {hadToken && (
        <p class="alert" role="alert">
          The access token was refused (it may have expired). Sign in, or open the dashboard with a new token.
        </p>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <label for="signin-email">Email</label>
        <input
          id="signin-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <label for="signin-password">Password</label>
        <input
          id="signin-password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <fieldset class="modes">
          <legend>Mode</legend>
          {(['TEST', 'LIVE'] as const).map((m) => (
            <label key={m} class="check-label">
              <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} />
              {m === 'TEST' ? 'Test data' : 'Live data'}
            </label>
          ))}
        </fieldset>
        <details>
          <summary>In several workspaces?</summary>
          <label for="signin-workspace">Workspace id (optional)</label>
          <input
            id="signin-workspace"
            type="text"
            value={workspaceId}
            onInput={(e) => setWorkspaceId(e.currentTarget.value)}
          />
        </details>
        <UserErrors errors={errors} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p class="muted small">
        Operators can also open the dashboard with a short-lived access token:{' '}
        <code>/app/#token=&lt;access token&gt;</code> (from <code>issueAccessToken</code>).
      </p>
    </main>
  );
}

export function InvitationPage({ token, onSignedIn }: { token: string; onSignedIn: () => void }) {
  const client = useSessionClient();
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  if (!token) return <Empty>This invitation link is incomplete.</Empty>;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (password !== again) {
      setErrors([{ code: 'VALIDATION', message: 'The two passwords differ: type the same password twice.' }]);
      return;
    }
    setBusy(true);
    const response = await client
      .mutation(AcceptInvitation, { input: { token, password, name: name.trim() || null } })
      .toPromise();
    setBusy(false);
    const found = mutationErrors(response, response.data?.acceptInvitation.userErrors);
    setErrors(found);
    if (found.length === 0 && response.data?.acceptInvitation.member) {
      // The invitation is used up: take it out of the address and history.
      history.replaceState(null, '', `${location.pathname}${location.search}#/`);
      onSignedIn();
    }
  };
  return (
    <main class="signin" id="main">
      <h1>Join your team on refgraph</h1>
      <p>Choose a password to accept the invitation. You are signed in right after.</p>
      <form onSubmit={submit} aria-label="Accept the invitation">
        <label for="invite-name">Your name (optional)</label>
        <input
          id="invite-name"
          type="text"
          autoComplete="name"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <label for="invite-password">Password</label>
        <input
          id="invite-password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <label for="invite-again">Password, again</label>
        <input
          id="invite-again"
          type="password"
          autoComplete="new-password"
          required
          value={again}
          onInput={(e) => setAgain(e.currentTarget.value)}
        />
        <UserErrors errors={errors} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Joining…' : 'Set password and sign in'}
        </button>
      </form>
    </main>
  );
}
