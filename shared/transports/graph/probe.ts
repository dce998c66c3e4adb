import { isMailError } from '../../errors.js';
import type { Profile } from '../../config/profiles.js';
import type { ProbeContext, ProbeFinding } from '../descriptor.js';
import { graphConnection } from './graphClient.js';

/**
 * Reads the mailbox's inbox folder resource (id only) through a Graph client of the diagnosis's
 * own: it proves the host, the token's audience and the mailbox without sending or changing anything.
 */
export async function probeGraphSend(profile: Profile, ctx: ProbeContext): Promise<ProbeFinding> {
  try {
    const graph = graphConnection(profile, { tokens: ctx.tokens, proxy: ctx.proxy });
    await graph.call(`${graph.userPath}/mailFolders/inbox`, { abortSignal: ctx.abortSignal }, (request) => request.select('id').get() as Promise<unknown>);
    return { detail: `Graph at ${profile.endpoints.graph} accepted the token and found the inbox of ${profile.mailbox}` };
  } catch (error) {
    // Reading a folder needs Mail.ReadBasic or more; an app with Mail.Send alone gets 403 here
    // although it can send. Its token then shows Mail.Send, and only a test message can tell.
    // A profile that also receives through Graph must read, so for it the 403 stands.
    if (!isForbidden(error) || !ctx.granted('Mail.Send') || profile.receive?.via === 'graph') throw error;
    return {
      detail: `Graph at ${profile.endpoints.graph} accepted the token but refused to read the inbox of ${profile.mailbox}, as it does for an app with Mail.Send only`,
      hint: 'The token carries Mail.Send; whether Exchange lets this app send from this mailbox (an Application Access Policy may fence it off) shows only when a test message is sent: give sendTo.',
    };
  }
}

function isForbidden(error: unknown): boolean {
  return isMailError(error) && error.code === 'EAUTH' && (error.cause as { statusCode?: unknown } | undefined)?.statusCode === 403;
}
