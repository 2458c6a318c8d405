/** One decision of the auditing proxy: the shape on the socket, in the store, and in the app. */
export interface AuditEvent {
  sandbox: string;
  time: string;
  /** how it reached the proxy: HTTP_PROXY (`proxy`), CONNECT, or caught by the redirect of port 80/443 */
  via: 'proxy' | 'connect' | 'transparent-http' | 'transparent-tls';
  method: string;
  host: string;
  port: number;
  /** plain HTTP only: TLS content is never read */
  path: string | null;
  decision: 'allow' | 'deny';
  rule: string;
  /** the upstream's HTTP status (plain HTTP), or null */
  status: number | null;
  bytesUp: number;
  bytesDown: number;
  error?: string | undefined;
}
