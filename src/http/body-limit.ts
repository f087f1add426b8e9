import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Refuse GraphQL request bodies larger than `limit` bytes (413, code REQUEST_ENTITY_TOO_LARGE).
 *
 * Replaces Yoga's own limit (`maxRequestBodySize`, turned off where this is used), which pipes
 * every body through a TransformStream: a stream pipeline, an AbortController and a DOMException
 * per request, about 7 % of the server's CPU time on a trivial query (BENCHMARKS.md, "overhead").
 * A body with a Content-Length needs no counting: the header is checked, and Node's HTTP parser
 * never delivers more bytes than it announces (a request with both Content-Length and
 * Transfer-Encoding is refused before it gets here). Only a chunked body, whose size is unknown
 * until it ends, is counted as it is read.
 *
 * Must be the last of the app's plugins, so that it wraps the request parser Yoga selected.
 */
export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      if (contentLength !== null) {
        if (!/^\d+$/.test(contentLength)) {
          throw httpError(400, 'BAD_REQUEST', 'The Content-Length header must be a single non-negative integer.');
        }
        if (Number(contentLength) > limit) throw tooLarge(limit);
        return;
      }
      if (!requestParser || !request.body) return;
      const parse = requestParser;
      setRequestParser((req) => parse(countedBody(req, limit, fetchAPI)));
    },
  };
}

function tooLarge(limit: number): GraphQLError {
  return httpError(
    413,
    'REQUEST_ENTITY_TOO_LARGE',
    `The request body is larger than ${limit} bytes (MAX_REQUEST_BODY_BYTES). Send a smaller document or fewer variables, or split the work over several requests.`,
  );
}

function httpError(status: number, code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}

/** The same request with a body that fails with 413 once more than `limit` bytes have been read. */
function countedBody(
  request: Request,
  limit: number,
  fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream },
): Request {
  // Yoga's note: a native ReadableStream body needs the native TransformStream, a ponyfill one the ponyfill's.
  const Transform = request.body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let read = 0;
  const body = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > limit) controller.error(tooLarge(limit));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body,
    // @ts-expect-error: a streamed request body needs `duplex` (missing from the DOM typings)
    duplex: 'half',
  });
}
