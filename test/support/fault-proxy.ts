// A TCP fault proxy for tests: sits between seckill and Redis / PostgreSQL and injects the
// faults real deployments meet — a slow link, a stalled store, a cut connection, and a reply
// that never comes although the request was applied.
import net from 'node:net';

type Direction = 'up' | 'down'; // up: client -> server, down: server -> client

interface Pipe {
  readonly to: net.Socket;
  readonly queue: Buffer[];
  pumping: boolean;
}

interface Link {
  readonly client: net.Socket;
  readonly server: net.Socket;
  readonly up: Pipe;
  readonly down: Pipe;
}

export interface FaultState {
  delayMs: number;
  stalled: boolean;
  dropReplies: boolean;
  /** dropReplies turns on once a client sends bytes containing this (then it is cleared). */
  dropRepliesAfter: string | null;
}

/**
 * One listening port forwarding to one target. Controls act on every connection, open and
 * future: `delay` adds ms per chunk in each direction (order kept), `stall` holds all bytes until
 * `release`/`restore`, `cut` destroys every connection now, `dropReplies` forwards client->server
 * and swallows server->client (a commit that applied although the client gave up). The
 * `restore` call clears every fault and delivers what a stall held.
 */
export class FaultProxy {
  private server: net.Server | null = null;
  private readonly links = new Set<Link>();
  private state: FaultState = { delayMs: 0, stalled: false, dropReplies: false, dropRepliesAfter: null };
  /** Bytes swallowed by dropReplies, for assertions. */
  droppedBytes = 0;
  /** Connections accepted since start. */
  accepted = 0;

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  /** A proxy in front of the host:port of a redis:// or postgres:// URL. */
  static forUrl(url: string): FaultProxy {
    const u = new URL(url);
    const dflt = u.protocol.startsWith('redis') ? 6379 : 5432;
    return new FaultProxy(u.hostname || '127.0.0.1', Number(u.port || dflt));
  }

  async start(): Promise<this> {
    const srv = net.createServer((client) => this.accept(client));
    this.server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve());
    });
    return this;
  }

  get port(): number {
    const a = this.server?.address();
    if (!a || typeof a !== 'object') throw new Error('fault proxy not started');
    return a.port;
  }

  /** The same URL with its host:port replaced by the proxy's. */
  url(original: string): string {
    const u = new URL(original);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get faults(): Readonly<FaultState> {
    return { ...this.state };
  }

  /** Open connections. */
  get connections(): number {
    return this.links.size;
  }

  /** Local ports of the proxy's connections to the target (how the target sees them, e.g. in CLIENT LIST). */
  upstreamPorts(): Set<number> {
    const ports = new Set<number>();
    for (const l of this.links) if (l.server.localPort) ports.add(l.server.localPort);
    return ports;
  }

  delay(ms: number): void {
    this.state.delayMs = Math.max(0, ms);
  }

  stall(): void {
    this.state.stalled = true;
  }

  /** Deliver what the stall held, in order. */
  release(): void {
    this.state.stalled = false;
    for (const l of this.links) {
      this.pump(l.up);
      this.pump(l.down);
    }
  }

  dropReplies(on = true): void {
    this.state.dropReplies = on;
  }

  /**
   * Swallow replies from the moment a client sends `marker` (e.g. 'COMMIT': the last statement of
   * a transaction reaches the server and applies, its reply and every later one is lost).
   */
  dropRepliesAfter(marker: string): void {
    this.state.dropRepliesAfter = marker;
  }

  /** Destroy every open connection now (clients see a reset; new connections are accepted). */
  cut(): void {
    for (const l of [...this.links]) this.destroy(l);
  }

  /** Clear every fault; bytes a stall held are delivered. */
  restore(): void {
    this.state.delayMs = 0;
    this.state.dropReplies = false;
    this.state.dropRepliesAfter = null;
    this.release();
  }

  async close(): Promise<void> {
    this.cut();
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    client.setNoDelay(true);
    const server = net.connect({ host: this.targetHost, port: this.targetPort });
    server.setNoDelay(true);
    const link: Link = {
      client,
      server,
      up: { to: server, queue: [], pumping: false },
      down: { to: client, queue: [], pumping: false },
    };
    this.links.add(link);
    client.on('data', (chunk: Buffer) => this.forward(link, 'up', chunk));
    server.on('data', (chunk: Buffer) => this.forward(link, 'down', chunk));
    const end = () => this.destroy(link);
    for (const s of [client, server]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  private forward(link: Link, dir: Direction, chunk: Buffer): void {
    if (dir === 'down' && this.state.dropReplies) {
      this.droppedBytes += chunk.length;
      return;
    }
    const pipe = dir === 'up' ? link.up : link.down;
    pipe.queue.push(chunk);
    this.pump(pipe);
    const marker = this.state.dropRepliesAfter;
    if (dir === 'up' && marker !== null && chunk.includes(marker)) {
      this.state.dropRepliesAfter = null;
      this.state.dropReplies = true;
    }
  }

  /** One chunk at a time per direction, so a delay never reorders bytes. */
  private pump(pipe: Pipe): void {
    if (pipe.pumping) return;
    pipe.pumping = true;
    const next = (): void => {
      if (this.state.stalled || pipe.queue.length === 0 || pipe.to.destroyed) {
        pipe.pumping = false;
        return;
      }
      const send = () => {
        if (this.state.stalled) {
          pipe.pumping = false;
          return;
        }
        const chunk = pipe.queue.shift();
        if (chunk && !pipe.to.destroyed) pipe.to.write(chunk);
        next();
      };
      if (this.state.delayMs > 0) setTimeout(send, this.state.delayMs);
      else send();
    };
    next();
  }

  private destroy(link: Link): void {
    if (!this.links.delete(link)) return;
    link.up.queue.length = 0;
    link.down.queue.length = 0;
    link.client.destroy();
    link.server.destroy();
  }
}
