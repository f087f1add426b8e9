// An action on one row that asks first: a button, then a warning with "Confirm …" and "Keep";
// the mutation's userErrors (or the request's own failure) are shown beside it.
import type { AnyVariables, DocumentInput } from '@urql/core';
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { UserErrors, mutationErrors, type UserErrorLike } from './feedback.js';

export function ConfirmAction<Data, Variables extends AnyVariables>({
  action,
  subject,
  warning,
  mutation,
  variables,
  userErrors,
  onDone,
}: {
  /** The button's text ("Revoke"); its accessible name is "Revoke <subject>", the second step's "Confirm revoke". */
  action: string;
  subject: string;
  /** What the action does, shown next to the confirmation. */
  warning: string;
  mutation: DocumentInput<Data, Variables>;
  variables: Variables;
  /** The payload's userErrors. */
  userErrors: (data: Data) => readonly UserErrorLike[] | null | undefined;
  /** Called once the mutation went through without errors. */
  onDone: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [state, run] = useMutation(mutation);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  if (!confirming)
    return (
      <button
        type="button"
        class="small danger"
        onClick={() => setConfirming(true)}
        aria-label={`${action} ${subject}`}
      >
        {action}
      </button>
    );
  return (
    <div class="actions">
      <span class="small">{warning}</span>
      <button
        type="button"
        class="small danger"
        disabled={state.fetching}
        onClick={async () => {
          const response = await run(variables);
          const found = mutationErrors(response, response.data ? userErrors(response.data) : undefined);
          setErrors(found);
          if (found.length === 0) onDone();
        }}
      >
        {`Confirm ${action.toLowerCase()}`}
      </button>
      <button type="button" class="small" onClick={() => setConfirming(false)}>
        Keep
      </button>
      <UserErrors errors={errors} />
    </div>
  );
}
