// A free TCP port on the loopback interface, for a process or server a test starts.
import net from 'node:net';

/**
 * Asks the kernel for a free port and releases it at once. Another process may take it before the
 * caller binds it: launchers that use it retry on EADDRINUSE (launcher.ts).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    // A probe must never keep the test process alive.
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
