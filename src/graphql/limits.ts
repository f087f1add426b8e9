import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { createComplexityRule } from '@pothos/plugin-complexity';
import {
  getNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  parse,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLOutputType,
  type ParseOptions,
  type Source,
  type ValidationContext,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** What a client's document may ask for; every one is refused before anything executes. */
export interface OperationLimits {
  /** Deepest field nesting (MAX_QUERY_DEPTH). */
  depth: number;
  /** Estimated cost: each field 1, a list multiplies its children by its page size (MAX_QUERY_COST). */
  cost: number;
  /** Aliased fields in one operation, fragments included (MAX_ALIASES). */
  aliases: number;
  /** Lexical tokens of the document (MAX_QUERY_TOKENS). */
  tokens: number;
  /** Nesting of braces, brackets and parentheses, checked before parsing (MAX_QUERY_NESTING). */
  nesting: number;
}

/** Page size of a connection without `first`/`last`, and the most it returns (see builder.ts). */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
/** The cost estimate of a plain list's children when the field declares none. */
export const DEFAULT_LIST_ESTIMATE = 10;

/**
 * A field's cost for @pothos/plugin-complexity: 1 for itself, and its children multiplied by how
 * many it can return. A connection returns `first` (or `last`) items, 20 when neither is given,
 * at most 100; its `edges` list is then not multiplied again. Any other list multiplies by a
 * declared estimate (a field's own `complexity` option) or 10. So a relation that leads back to
 * its parent (`Program.rewardRules.program.rewardRules…`) multiplies at every level, as the work
 * does, and aliases add up.
 */
export function fieldComplexity(
  args: Record<string, unknown>,
  _ctx: unknown,
  field: { type: GraphQLOutputType },
): { field: number; multiplier: number } {
  const named = getNamedType(field.type).name;
  if (named.endsWith('Connection')) {
    const asked =
      typeof args['first'] === 'number'
        ? args['first']
        : typeof args['last'] === 'number'
          ? args['last']
          : DEFAULT_PAGE_SIZE;
    return { field: 1, multiplier: Math.min(Math.max(asked, 0), MAX_PAGE_SIZE) };
  }
  if (isList(field.type)) {
    if (named.endsWith('Edge')) return { field: 1, multiplier: 1 };
    return { field: 1, multiplier: DEFAULT_LIST_ESTIMATE };
  }
  return { field: 1, multiplier: 1 };
}

function isList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

/** A refusal of the document as a whole: nothing of it runs. HTTP 400 (200 for application/json). */
export function tooComplex(message: string, limit: string, max: number, actual: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'QUERY_TOO_COMPLEX', limit, max, actual, http: { status: 400, spec: true } },
  });
}

/**
 * The deepest nesting of `{`, `[` and `(` in a GraphQL source outside strings and comments, or
 * the first depth past `limit` (scanning stops there). graphql-js parses recursively: a document
 * nested some thousands of levels deep overflows the stack before any other limit applies.
 */
export function nestingDepth(source: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  const n = source.length;
  for (let i = 0; i < n; i++) {
    const c = source.charCodeAt(i);
    if (c === 0x7b || c === 0x5b || c === 0x28) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d || c === 0x29) {
      depth--;
    } else if (c === 0x23) {
      while (i + 1 < n && source.charCodeAt(i + 1) !== 0x0a && source.charCodeAt(i + 1) !== 0x0d) i++;
    } else if (c === 0x22) {
      if (source.startsWith('""', i + 1)) {
        i += 3;
        while (i < n && !source.startsWith('"""', i)) i += source.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        i++;
        while (i < n && source.charCodeAt(i) !== 0x22 && source.charCodeAt(i) !== 0x0a)
          i += source.charCodeAt(i) === 0x5c ? 2 : 1;
      }
    }
  }
  return deepest;
}

/**
 * Operation limits for every transport (HTTP, SSE and graphql-ws all go through Yoga's envelop):
 * nesting and tokens while parsing, depth and aliases while validating (cached with the document),
 * cost before executing or subscribing (it depends on the variables: `first: $n`). Each refusal is
 * a top-level error with `extensions.code` QUERY_TOO_COMPLEX that names the limit and the value.
 */
export function useOperationLimits(limits: OperationLimits): Plugin {
  const parseWithLimits = (source: string | Source, options?: ParseOptions): DocumentNode => {
    const body = typeof source === 'string' ? source : source.body;
    const nesting = nestingDepth(body, limits.nesting);
    if (nesting > limits.nesting) {
      throw tooComplex(
        `The document nests brackets more than ${limits.nesting} levels deep (MAX_QUERY_NESTING). Flatten the query or its argument values.`,
        'MAX_QUERY_NESTING',
        limits.nesting,
        nesting,
      );
    }
    try {
      return parse(source, { ...options, maxLexicalTokens: limits.tokens });
    } catch (error) {
      if (error instanceof GraphQLError && /more th\w+ \d+ tokens/.test(error.message)) {
        throw tooComplex(
          `The document has more than ${limits.tokens} tokens (MAX_QUERY_TOKENS). Send a shorter document: fewer fields, aliases or literal values (use variables).`,
          'MAX_QUERY_TOKENS',
          limits.tokens,
          limits.tokens + 1,
        );
      }
      throw error;
    }
  };
  const rules = [
    maxDepthRule({
      n: limits.depth,
      propagateOnRejection: false,
      onReject: [
        (ctx, error) =>
          report(
            ctx,
            error,
            'MAX_QUERY_DEPTH',
            limits.depth,
            (found) =>
              `The query is ${found} fields deep, more than ${limits.depth} (MAX_QUERY_DEPTH). Ask for less nesting, or fetch the deeper part with a second query by id.`,
          ),
      ],
    }),
    maxAliasesRule({
      n: limits.aliases,
      propagateOnRejection: false,
      onReject: [
        (ctx, error) =>
          report(
            ctx,
            error,
            'MAX_ALIASES',
            limits.aliases,
            (found) =>
              `The operation uses ${found} aliases, more than ${limits.aliases} (MAX_ALIASES). Send several requests, or fewer aliased fields per request.`,
          ),
      ],
    }),
  ];
  /** Cost of documents without variables, whose cost never changes: most requests are these. */
  const fixedCost = new WeakMap<DocumentNode, Map<string, readonly GraphQLError[]>>();
  const costErrors = (args: ExecutionArgs): readonly GraphQLError[] => {
    const operationName = args.operationName ?? null;
    const fixed = args.document.definitions.every(
      (d) => d.kind !== 'OperationDefinition' || !d.variableDefinitions?.length,
    );
    const cached = fixed ? fixedCost.get(args.document)?.get(operationName ?? '') : undefined;
    if (cached) return cached;
    let errors: readonly GraphQLError[] = validate(args.schema, args.document, [
      createComplexityRule({
        context: args.contextValue as object,
        variableValues: (args.variableValues ?? {}) as Record<string, unknown>,
        operationName,
        validate: ({ complexity }, reportError) => {
          if (complexity > limits.cost) {
            reportError(
              tooComplex(
                `The query's estimated cost is ${complexity}, more than ${limits.cost} (MAX_QUERY_COST). Each field costs 1 and a list multiplies what is under it by its page size (first: 20 unless given): ask for smaller pages, fewer nested lists, or split the query.`,
                'MAX_QUERY_COST',
                limits.cost,
                complexity,
              ),
            );
          }
        },
      }),
    ]);
    // Variable problems are reported by execution itself, with their usual code.
    errors = errors.filter((e) => e.extensions['code'] === 'QUERY_TOO_COMPLEX');
    if (fixed) {
      const byName = fixedCost.get(args.document) ?? new Map<string, readonly GraphQLError[]>();
      byName.set(operationName ?? '', errors);
      fixedCost.set(args.document, byName);
    }
    return errors;
  };
  return {
    onParse: ({ setParseFn }) => setParseFn(parseWithLimits),
    onValidate: ({ addValidationRule }) => {
      for (const rule of rules) addValidationRule(rule);
    },
    onExecute: ({ args, setResultAndStopExecution }) => {
      const errors = costErrors(args);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      const errors = costErrors(args);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
  };
}

/** graphql-armor found a limit passed: report our error (code, limit, value) instead of its own. */
function report(
  ctx: ValidationContext | null,
  error: GraphQLError,
  limit: string,
  max: number,
  message: (found: number) => string,
): void {
  const found = Number(/found (\d+)/.exec(error.message)?.[1] ?? max + 1);
  ctx?.reportError(tooComplex(message(found), limit, max, found));
}
