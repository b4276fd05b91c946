// A stand-in chat-completions server on 127.0.0.1 speaking the OpenAI protocol (real HTTP), for the clients'
// error paths and for runs that need an LLM adviser without one.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

interface Seen {
  body: any;
  headers: IncomingHttpHeaders;
  at: number;
}
export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
  delayMs?: number;
}
export type Handler = (body: any, n: number) => Answer | "hang";

const servers: Server[] = [];

/** Close every stand-in started so far (call it in afterEach). */
export async function closeStandIns(): Promise<void> {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}

/** A chat-completions stand-in that answers at most `max` requests (the rest get a non-retryable 400). */
export async function standIn(handler: Handler, max = 10) {
  const seen: Seen[] = [];
  let active = 0;
  let peak = 0;
  const server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const n = seen.length;
    seen.push({ body: JSON.parse(raw), headers: req.headers, at: performance.now() });
    const a: Answer | "hang" =
      n >= max
        ? { status: 400, headers: { "x-should-retry": "false" }, body: { error: { message: "stand-in: too many requests" } } }
        : handler(seen[n].body, n);
    if (a === "hang") return;
    active++;
    peak = Math.max(peak, active);
    if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
    active--;
    res.writeHead(a.status ?? 200, { "content-type": "application/json", ...a.headers });
    res.end(JSON.stringify(a.body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return { url, seen, peak: () => peak, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

export const chat = (content: string, usage = { prompt_tokens: 100, completion_tokens: 50 }): Answer => ({
  body: {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 0,
    model: "stand-in",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  },
});
