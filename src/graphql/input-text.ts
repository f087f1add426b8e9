import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import { getNamedType, GraphQLError, isObjectType, type GraphQLFieldResolver, type GraphQLResolveInfo } from 'graphql';
import type { UserErrorShape } from '../domain/errors.js';

/**
 * Text that no column can hold: a NUL character (PostgreSQL refuses it in text and jsonb, error
 * 22021), or a UTF-16 surrogate without its pair — a high one not followed by a low one, or a low
 * one not preceded by a high one. JSON can carry such a half (`"\ud800"`); encoded to UTF-8 it
 * becomes U+FFFD, so two different keys could silently become the same one.
 */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Problems reported for one field, at most (each is one userError). */
const MAX_PROBLEMS = 20;

export interface TextProblem {
  /** Path to the value inside the field's arguments: ["input", "name"], ["ids", "2"]. */
  path: string[];
  /** For people: what is wrong and where, e.g. `input.name contains a NUL character …`. */
  message: string;
}

/** What is wrong with `text`, or null when it can be stored. */
export function unstorableText(text: string): string | null {
  const match = UNSTORABLE.exec(text);
  if (!match) return null;
  const char = match[0]!;
  const at = `at position ${match.index}`;
  if (char === '\0') return `contains a NUL character (U+0000) ${at}, which cannot be stored; remove it.`;
  const code = char.charCodeAt(0).toString(16).toUpperCase();
  return `contains an unpaired UTF-16 surrogate (U+${code}) ${at}, which is not Unicode text; send valid UTF-8 (a JSON \\u escape of a surrogate needs its pair).`;
}

/** `input.amount.currency`, `types[2]`. */
export function dottedPath(path: readonly string[]): string {
  return path.map((part, i) => (/^\d+$/.test(part) && i > 0 ? `[${part}]` : i > 0 ? `.${part}` : part)).join('');
}

/**
 * Every string in a field's (coerced) arguments that cannot be stored: argument values, input
 * fields and list items at any depth, and the keys of JSON objects. Iterative, so a deeply nested
 * value cannot overflow the stack.
 */
export function textProblems(args: Record<string, unknown>): TextProblem[] {
  const problems: TextProblem[] = [];
  // Each entry knows its parent, so a path is only built for a value at fault.
  type Entry = { value: unknown; key: string; parent: Entry | null };
  const pathOf = (entry: Entry): string[] => {
    const path: string[] = [];
    for (let e: Entry | null = entry; e; e = e.parent) path.push(e.key);
    return path.reverse();
  };
  const stack: Entry[] = Object.entries(args)
    .reverse()
    .map(([key, value]) => ({ value, key, parent: null }));
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const entry = stack.pop()!;
    const { value } = entry;
    if (typeof value === 'string') {
      const problem = unstorableText(value);
      if (problem) {
        const path = pathOf(entry);
        problems.push({ path, message: `${dottedPath(path)} ${problem}` });
      }
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], key: String(i), parent: entry });
    } else if (isPlainObject(value)) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i]!;
        const keyProblem = unstorableText(key);
        if (keyProblem) {
          const path = pathOf(entry);
          problems.push({ path: [...path, key], message: `A key in ${dottedPath(path)} ${keyProblem}` });
        } else stack.push({ value: item, key, parent: entry });
      }
    }
  }
  return problems;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A mutation answers with a payload that has `userErrors`; anything else gets a top-level error. */
function returnsPayload(info: GraphQLResolveInfo): boolean {
  const type = getNamedType(info.returnType);
  return isObjectType(type) && 'userErrors' in type.getFields();
}

/** `resolver`, run only when its arguments hold no unstorable text. */
function checked<Context>(
  resolver: GraphQLFieldResolver<unknown, Context, object>,
): GraphQLFieldResolver<unknown, Context, object> {
  return (parent, args, context, info) => {
    const problems = textProblems(args as Record<string, unknown>);
    if (problems.length === 0) return resolver(parent, args, context, info);
    if (returnsPayload(info)) {
      const userErrors: UserErrorShape[] = problems.map((p) => ({
        code: 'VALIDATION',
        message: p.message,
        field: p.path,
      }));
      return { userErrors };
    }
    throw badTextError(problems);
  };
}

function badTextError(problems: TextProblem[]): GraphQLError {
  const [first] = problems;
  const more = problems.length > 1 ? ` (${problems.length - 1} more value${problems.length > 2 ? 's' : ''} too)` : '';
  return new GraphQLError(`Argument ${first!.message}${more}`, {
    extensions: { code: 'BAD_USER_INPUT', field: first!.path },
  });
}

/**
 * Checks the arguments of every field, before its resolver runs (and after the auth scopes, the
 * plugins listed before this one), for text that cannot be stored (`unstorableText`). A mutation
 * is refused with one VALIDATION userError per value, `field` naming it; a query field or a
 * subscription with a top-level BAD_USER_INPUT error naming the argument. Nothing runs, so nothing
 * is written. Fields without arguments are left as they are.
 *
 * One place for every argument, present and future, rather than a check in each service: the
 * services' own validation never sees such text, and the database's refusal (22021) was an
 * unexpected error.
 */
export class InputTextPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    // A subscription's arguments are checked once, when it starts (wrapSubscribe), not per event.
    if (Object.keys(fieldConfig.args).length === 0 || fieldConfig.kind === 'Subscription') return resolver;
    return checked(resolver);
  }

  /**
   * Arguments that a plugin maps before any resolver wrapper runs (Relay decodes the global ids
   * of `node` and `nodes`) are checked before that mapping — and so, for those fields only, before
   * the auth scopes: the mapping would otherwise answer first, with an error of its own.
   */
  override wrapArgMappers(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!resolver || fieldConfig.argMappers.length === 0) return resolver;
    return checked(resolver);
  }

  override wrapSubscribe(
    subscribe: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!subscribe || Object.keys(fieldConfig.args).length === 0) return subscribe;
    return (parent, args, context, info) => {
      const problems = textProblems(args as Record<string, unknown>);
      if (problems.length > 0) throw badTextError(problems);
      return subscribe(parent, args, context, info);
    };
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      inputText: InputTextPlugin<Types>;
    }
  }
}

const pluginName = 'inputText';
SchemaBuilder.registerPlugin(pluginName, InputTextPlugin);
export default pluginName;
