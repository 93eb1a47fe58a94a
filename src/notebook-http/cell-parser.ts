/**
 * Choosing and running a cell parser. Two, as in the reference: `annotations` (code cells starting
 * `# GET /path`, annotation-parser.ts) and `swagger` (a Swagger document in a fenced block plus code
 * cells starting `# operationId: <id>`, swagger-parser.ts).
 */
import type { NotebookDocument } from '../kernels/notebook.ts';
import { parseAnnotatedNotebook } from './annotation-parser.ts';
import { ApiDefinitionError, type ApiDefinition } from './api-definition.ts';
import { commentPrefixFor, notebookLanguage } from './language.ts';
import { parseSwaggerNotebook } from './swagger-parser.ts';
import type { CellParserName } from './parser-names.ts';

export interface ParseOptions {
  parser: CellParserName;
  /** Extra or replacement comment tokens by language name (NotebookHTTPPersonality.comment_prefix). */
  commentPrefixes?: Readonly<Record<string, string>>;
}

/** Parse a notebook's API; throws ApiDefinitionError when it declares no endpoint or a path is unusable. */
export function parseApiDefinition(notebook: NotebookDocument, options: ParseOptions): ApiDefinition {
  const commentPrefix = commentPrefixFor(notebookLanguage(notebook), options.commentPrefixes);
  const input = { notebook, commentPrefix };
  const definition = options.parser === 'swagger' ? parseSwaggerNotebook(input) : parseAnnotatedNotebook(input);
  if (definition.endpoints.length === 0) {
    const example = options.parser === 'swagger' ? `${commentPrefix} operationId: <id>` : `${commentPrefix} GET /path`;
    throw new ApiDefinitionError(
      `No endpoints were discovered in ${notebook.uri} (cell parser "${options.parser}"): ` +
        `start a code cell with a line like "${example}".` +
        (definition.warnings.length > 0 ? ` ${definition.warnings.join('; ')}` : ''),
    );
  }
  return definition;
}
