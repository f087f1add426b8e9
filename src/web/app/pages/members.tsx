// Team members: the list (invited and active), invite (the one-time link to hand over), remove.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import { formatDateTime } from '../../lib/format.js';
import { Count, Empty, Loading, RequestError, UserErrors, mutationErrors, type UserErrorLike } from '../ui/feedback.js';
import { ConfirmAction } from '../ui/confirm.js';
import { useCanWrite, useViewer } from '../viewer.js';
import { Table } from '../ui/paged.js';

const MembersQuery = graphql(`
  query MembersList {
    members(first: 100) {
      totalCount
      edges {
        node {
          id
          email
          name
          role
          status
          createdAt
          joinedAt
        }
      }
    }
  }
`);

const Invite = graphql(`
  mutation MembersInvite($input: InviteMemberInput!) {
    inviteMember(input: $input) {
      member {
        id
        email
      }
      invitationUrl
      userErrors {
        code
        message
        field
      }
    }
  }
`);

const Remove = graphql(`
  mutation MembersRemove($input: RemoveMemberInput!) {
    removeMember(input: $input) {
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

export function MembersPage() {
  const canWrite = useCanWrite();
  const { memberEmail } = useViewer();
  const [result, refetch] = useQuery({ query: MembersQuery });
  const rows = result.data?.members.edges.map((e) => e.node) ?? [];
  const reload = () => refetch({ requestPolicy: 'network-only' });
  return (
    <>
      <h1>Members</h1>
      {canWrite && <InviteForm onInvited={reload} />}
      <section class="card" aria-labelledby="members-heading">
        <h2 id="members-heading">
          Team <Count n={result.data?.members.totalCount} />
        </h2>
        <RequestError error={result.error} />
        {result.fetching && !result.data && <Loading what="members" />}
        {result.data && rows.length === 0 && <Empty>No members yet.</Empty>}
        {rows.length > 0 && (
          <Table columns={['Member', 'Role', 'Status', 'Joined', canWrite && 'Actions']}>
            {rows.map((m) => (
              <tr key={m.id}>
                <td>
                  {m.name ?? m.email}
                  {m.name && <div class="muted small">{m.email}</div>}
                </td>
                <td>{m.role === 'ADMIN' ? 'admin' : 'read-only'}</td>
                <td>
                  <span class={`tag status-${m.status === 'ACTIVE' ? 'active' : 'pending'}`}>
                    {m.status.toLowerCase()}
                  </span>
                </td>
                <td>{m.joinedAt ? formatDateTime(m.joinedAt) : `invited ${formatDateTime(m.createdAt)}`}</td>
                {canWrite && (
                  <td>
                    {m.email === memberEmail ? (
                      <span class="muted small">you</span>
                    ) : (
                      <ConfirmAction
                        action="Remove"
                        subject={m.name ?? m.email}
                        warning="They are signed out at once."
                        mutation={Remove}
                        variables={{ input: { id: m.id } }}
                        userErrors={(data) => data.removeMember.userErrors}
                        onDone={reload}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </Table>
        )}
      </section>
    </>
  );
}

function InviteForm({ onInvited }: { onInvited: () => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<'ADMIN' | 'READ_ONLY'>('READ_ONLY');
  const [state, invite] = useMutation(Invite);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [link, setLink] = useState<{ email: string; url: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setLink(null);
    setCopied(false);
    const response = await invite({ input: { email: email.trim(), name: name.trim() || null, role } });
    const payload = response.data?.inviteMember;
    const found = mutationErrors(response, payload?.userErrors);
    setErrors(found);
    if (found.length === 0 && payload?.invitationUrl && payload.member) {
      setLink({ email: payload.member.email, url: payload.invitationUrl });
      setEmail('');
      setName('');
      onInvited();
    }
  };
  return (
    <section class="card" aria-labelledby="invite-heading">
      <h2 id="invite-heading">Invite a member</h2>
      <form class="form-row" onSubmit={submit}>
        <label>
          Email
          <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Name (optional)
          <input type="text" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as 'ADMIN' | 'READ_ONLY')}>
            <option value="READ_ONLY">read-only</option>
            <option value="ADMIN">admin</option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={state.fetching || email.trim() === ''}>
          Invite
        </button>
      </form>
      <UserErrors errors={errors} />
      {link && (
        <div class="secret" role="status">
          <p>
            <strong>Send this link to {link.email}</strong>: it works once, and expires. refgraph sends no email.
          </p>
          <code class="break" data-invitation>
            {link.url}
          </code>
          <div class="actions">
            <button
              type="button"
              class="small"
              onClick={async () => {
                await navigator.clipboard?.writeText(link.url);
                setCopied(true);
              }}
            >
              {copied ? 'Copied' : 'Copy link'}
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
