import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
// Every module registers its types and fields on import.
import '../modules/partner/partner.graphql.js';
import '../modules/workspace/workspace.graphql.js';

/** The whole GraphQL schema, sorted so its printed form is stable. */
export const schema = lexicographicSortSchema(builder.toSchema());
