// Server-sent events as the tests read them: a response body's chunks in, each event with its
// JSON data out; comments (keep-alive lines) skipped.

export interface ServerEvent {
  event: string;
  data: Record<string, unknown>;
}

/** The events of a text/event-stream body, in order, as they arrive. */
export async function* serverEvents(body: AsyncIterable<unknown>): AsyncGenerator<ServerEvent> {
  let buf = '';
  for await (const chunk of body) {
    buf += String(chunk);
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) yield { event, data: JSON.parse(data.join('\n')) as Record<string, unknown> };
    }
  }
}
