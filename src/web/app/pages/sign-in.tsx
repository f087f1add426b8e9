// Without a credential: how to open the dashboard. (Members' sign-in comes with the members API.)
export function SignInPage({ hadToken }: { hadToken: boolean; onSignedIn: () => void }) {
  return (
    <main class="signin" id="main">
      <h1>refgraph dashboard</h1>
      {hadToken && (
        <p class="alert" role="alert">
          The access token was refused (it may have expired). Issue a new one.
        </p>
      )}
      <p>
        Open the dashboard with a short-lived access token in the address fragment:{' '}
        <code>/app/#token=&lt;access token&gt;</code> (from the <code>issueAccessToken</code> mutation with an ADMIN or
        READ_ONLY key). The fragment never reaches the server; the token is kept for this tab only.
      </p>
    </main>
  );
}
