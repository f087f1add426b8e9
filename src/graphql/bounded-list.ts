import { GraphQLError } from 'graphql';

/**
 * A plain list field (not a connection) returns at most this many items: `first`, 100 when not
 * given. Its cost estimate (limits.ts) is the same number, so a list that leads back to its
 * parent can never multiply past what MAX_QUERY_COST allows.
 */
export const LIST_CAP = 100;

export const firstArgOptions = {
  required: false,
  description: `At most this many, from the start of the list (default and maximum ${LIST_CAP}).`,
} as const;

/** The number of items a capped list returns; a `first` out of range is the client's mistake. */
export function listTake(first: number | null | undefined): number {
  if (first === null || first === undefined) return LIST_CAP;
  if (first < 0 || first > LIST_CAP) {
    throw new GraphQLError(
      `first must be from 0 to ${LIST_CAP}; got ${first}. Use the paginated field for longer lists.`,
      {
        extensions: { code: 'BAD_USER_INPUT' },
      },
    );
  }
  return first;
}

/** The cost estimate of a capped list: its children count `first` times (the cap when not given). */
export const listComplexity = (args: { first?: number | null }) => ({
  field: 1,
  multiplier: Math.min(Math.max(args.first ?? LIST_CAP, 0), LIST_CAP),
});
