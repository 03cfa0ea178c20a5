import * as https from 'node:https';

/** An HTTPS agent that counts the connections it opens (to prove a client went through it). */
export function countingAgent(): { agent: https.Agent; created: () => number } {
  const agent = new https.Agent({ keepAlive: false });
  let created = 0;
  const orig = agent.createConnection.bind(agent);
  agent.createConnection = ((...args: Parameters<typeof orig>) => {
    created++;
    return orig(...args);
  }) as typeof agent.createConnection;
  return { agent, created: () => created };
}
