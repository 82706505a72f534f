import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The URL namespace of the jupyter_gitsync server extension.
 */
export const API_NAMESPACE = 'gitsync';

/**
 * Call the jupyter_gitsync server extension.
 *
 * This is the only place in the frontend that talks HTTP to the server.
 *
 * @param endPoint REST end point below `{baseUrl}gitsync/`, e.g. `status`.
 * @param init Initial values for the request (method, body, ...).
 * @param settings The server settings to use; defaults to
 *   `ServerConnection.makeSettings()`.
 * @returns The response body interpreted as JSON.
 * @throws {ServerConnection.NetworkError} if the server cannot be reached.
 * @throws {ServerConnection.ResponseError} if the server answers with a
 *   non-OK status; its message is the server's `message` field when the error
 *   body is JSON, otherwise a sentence naming the status code.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const requestUrl = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(requestUrl, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: unknown = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }

  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      Private.errorMessage(endPoint, response, data)
    );
  }

  if (data === undefined) {
    throw new Error(
      `Git Sync: the server answered ${API_NAMESPACE}/${endPoint} with a body that is not JSON.`
    );
  }
  return data as T;
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  /**
   * Build a readable error message for a failed request.
   */
  export function errorMessage(
    endPoint: string,
    response: Response,
    data: unknown
  ): string {
    if (typeof data === 'object' && data !== null && 'message' in data) {
      const message = (data as { message: unknown }).message;
      if (typeof message === 'string' && message.length > 0) {
        return message;
      }
    }
    if (response.status === 404) {
      return `Git Sync: ${API_NAMESPACE}/${endPoint} was not found on the server (is the jupyter_gitsync server extension enabled?).`;
    }
    const reason = response.statusText ? ` ${response.statusText}` : '';
    return `Git Sync: ${API_NAMESPACE}/${endPoint} failed with HTTP ${response.status}${reason}.`;
  }
}
