// The message brokers the event sinks' tests talk to (RabbitMQ, NATS JetStream: started by .ci/run),
// and why a test skips when one is not there.
import net from 'node:net';

export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const NATS_URL = 'nats://127.0.0.1:4222';

/** Whether something accepts TCP connections on 127.0.0.1:port (within 2 s). */
export async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

/** A skip reason when RabbitMQ is not reachable, else false. */
export async function withoutRabbit(): Promise<string | false> {
  return (await reachable(5672)) ? false : 'RabbitMQ is not reachable at 127.0.0.1:5672 (.ci/run starts it)';
}

/** A skip reason when NATS is not reachable, else false. */
export async function withoutNats(): Promise<string | false> {
  return (await reachable(4222)) ? false : 'NATS is not reachable at 127.0.0.1:4222 (.ci/run starts it)';
}
