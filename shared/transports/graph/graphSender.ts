import type { Profile } from '../../config/profiles.js';
import { MailError, isMailError } from '../../errors.js';
import type { Address } from '../../mail/address.js';
import type { OutgoingAttachment, OutgoingMessage } from '../../mail/outgoing.js';
import type { MailSender, SendOptions, SendResult, TransportDeps } from '../types.js';
import { graphConnection, graphSdk, type GraphConnection } from './graphClient.js';
import { translateGraphError } from './graphErrors.js';
import { foundInSentItems, sentItemsRetryDelays } from './graphSentItems.js';

/**
 * Graph's request limits for mail (https://learn.microsoft.com/graph/outlook-large-attachments):
 * an attachment over 3 MB must go through an upload session on a draft, and one request may
 * carry at most 4 MB. Upload chunks are at most 4 MB; multiples of 320 KiB are what every
 * Graph upload endpoint accepts.
 */
export const INLINE_ATTACHMENT_MAX_BYTES = 3 * 1024 * 1024;
export const REQUEST_MAX_BYTES = 4_000_000;
export const UPLOAD_CHUNK_BYTES = 12 * 320 * 1024;

interface GraphRecipient {
  emailAddress: { name?: string; address: string };
}

export interface GraphFileAttachment {
  '@odata.type': '#microsoft.graph.fileAttachment';
  name: string;
  contentType: string;
  contentBytes: string;
  isInline: boolean;
  contentId?: string;
}

export interface GraphMessage {
  subject: string;
  body: { contentType: 'html' | 'text'; content: string };
  importance: 'low' | 'normal' | 'high';
  toRecipients: GraphRecipient[];
  ccRecipients: GraphRecipient[];
  bccRecipients: GraphRecipient[];
  replyTo: GraphRecipient[];
  from?: GraphRecipient;
  internetMessageId: string;
  internetMessageHeaders?: Array<{ name: string; value: string }>;
  attachments?: GraphFileAttachment[];
}

interface DraftAnswer {
  id: string;
  internetMessageId?: string;
}

interface UploadSessionAnswer {
  uploadUrl: string;
  expirationDateTime: string;
}

function recipient(address: Address): GraphRecipient {
  return { emailAddress: address.name ? { name: address.name, address: address.address } : { address: address.address } };
}

export function toGraphAttachment(attachment: OutgoingAttachment): GraphFileAttachment {
  return {
    '@odata.type': '#microsoft.graph.fileAttachment',
    name: attachment.filename,
    contentType: attachment.contentType,
    contentBytes: attachment.content.toString('base64'),
    isInline: attachment.contentId !== undefined,
    ...(attachment.contentId !== undefined ? { contentId: attachment.contentId } : {}),
  };
}

/**
 * Our message as Graph's message resource. Graph's `body` holds one body: when both html and
 * text are given the html is sent and Exchange derives the plain-text alternative itself.
 * Graph accepts only custom `X-` internet headers, which is all the API lets through. `from`
 * is set only when it differs from the mailbox (it then needs Send As rights). Our
 * Message-ID becomes `internetMessageId`, which Graph lets a client set while the message
 * is a draft, so every transport reports the same id.
 */
export function toGraphMessage(message: OutgoingMessage, mailbox: string, attachments: OutgoingAttachment[] = message.attachments): GraphMessage {
  const graph: GraphMessage = {
    subject: message.subject,
    body: message.html !== undefined ? { contentType: 'html', content: message.html } : { contentType: 'text', content: message.text ?? '' },
    importance: message.importance,
    toRecipients: message.to.map(recipient),
    ccRecipients: message.cc.map(recipient),
    bccRecipients: message.bcc.map(recipient),
    replyTo: message.replyTo.map(recipient),
    internetMessageId: message.messageId,
  };
  if (message.from.address.toLowerCase() !== mailbox.toLowerCase()) graph.from = recipient(message.from);
  const headers = Object.entries(message.headers);
  if (headers.length) graph.internetMessageHeaders = headers.map(([name, value]) => ({ name, value }));
  if (attachments.length) graph.attachments = attachments.map(toGraphAttachment);
  return graph;
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/**
 * Splits the attachments into those that travel inside the first request and those that
 * follow it: over 3 MB through an upload session, the rest one POST each, when together
 * they would push the first request over Graph's 4 MB.
 */
export function planAttachments(message: OutgoingMessage, mailbox: string): { inline: OutgoingAttachment[]; posted: OutgoingAttachment[]; uploaded: OutgoingAttachment[] } {
  const uploaded = message.attachments.filter((a) => a.content.length > INLINE_ATTACHMENT_MAX_BYTES);
  const inline: OutgoingAttachment[] = [];
  const posted: OutgoingAttachment[] = [];
  let size = jsonBytes({ message: toGraphMessage(message, mailbox, []), saveToSentItems: true });
  for (const attachment of message.attachments) {
    if (attachment.content.length > INLINE_ATTACHMENT_MAX_BYTES) continue;
    const added = jsonBytes(toGraphAttachment(attachment)) + 1;
    if (size + added <= REQUEST_MAX_BYTES) {
      inline.push(attachment);
      size += added;
    } else {
      posted.push(attachment);
    }
  }
  return { inline, posted, uploaded };
}

/**
 * Sends through Microsoft Graph as the profile's mailbox (application permission Mail.Send).
 * Small messages: one `POST /users/{mailbox}/sendMail`, honouring `saveToSentItems`. Larger
 * ones: a draft, attachments added to it (over 3 MB through an upload session), then
 * `POST /messages/{id}/send`. Graph's send action always keeps the sent copy in Sent Items,
 * so on that path `saveToSentItems: false` cannot be honoured; a warning is logged.
 */
export class GraphSender implements MailSender {
  readonly via = 'graph' as const;
  private readonly graph: GraphConnection;

  /** Absent with saveToSentItems false: no copy is kept, so there is nothing to look for. */
  readonly findSent?: (messageId: string, options?: { abortSignal?: AbortSignal }) => Promise<boolean>;

  constructor(
    private readonly profile: Profile,
    private readonly deps: TransportDeps,
  ) {
    this.graph = graphConnection(profile, deps);
    const retryDelaysMs = deps.sentItemsLookupSeconds === undefined ? undefined : sentItemsRetryDelays(deps.sentItemsLookupSeconds);
    if (profile.send?.saveToSentItems !== false) this.findSent = (messageId, options = {}) => foundInSentItems(this.graph, messageId, { ...options, ...(retryDelaysMs && { retryDelaysMs }) });
  }

  async send(message: OutgoingMessage, options: SendOptions = {}): Promise<SendResult> {
    const plan = planAttachments(message, this.profile.mailbox);
    if (plan.posted.length === 0 && plan.uploaded.length === 0) {
      const saveToSentItems = this.profile.send?.saveToSentItems ?? true;
      await sending(() =>
        this.graph.call(`${this.graph.userPath}/sendMail`, options, (request) => request.post({ message: toGraphMessage(message, this.profile.mailbox), saveToSentItems })),
      );
      return { messageId: message.messageId };
    }
    return this.sendThroughDraft(message, plan, options);
  }

  private async sendThroughDraft(message: OutgoingMessage, plan: ReturnType<typeof planAttachments>, options: SendOptions): Promise<SendResult> {
    if (this.profile.send?.saveToSentItems === false) {
      this.deps.logger.warn({ operation: 'send', profile: this.profile.name, via: 'graph', messageId: message.messageId, note: 'saveToSentItems=false cannot be honoured for messages sent through a draft (attachments over 3 MB or a request over 4 MB): the sent copy stays in Sent Items' });
    }
    const draft = await this.graph.call<DraftAnswer>(`${this.graph.userPath}/messages`, options, (request) =>
      request.post(toGraphMessage(message, this.profile.mailbox, plan.inline)),
    );
    const messagePath = `${this.graph.userPath}/messages/${encodeURIComponent(draft.id)}`;
    try {
      for (const attachment of plan.posted) {
        await this.graph.call(`${messagePath}/attachments`, options, (request) => request.post(toGraphAttachment(attachment)));
      }
      for (const attachment of plan.uploaded) await this.upload(messagePath, attachment, options);
      options.abortSignal?.throwIfAborted();
      // Graph documents the send action without a request body.
      await sending(() => this.graph.call(`${messagePath}/send`, options, (request) => request.post(undefined)));
    } catch (error) {
      // A draft that may have been sent is no draft any more: nothing to discard.
      if (!(isMailError(error) && error.outcomeUnknown)) await this.discardDraft(messagePath, draft.id);
      throw error;
    }
    return { messageId: draft.internetMessageId ?? message.messageId, providerId: draft.id };
  }

  /** https://learn.microsoft.com/graph/api/attachment-createuploadsession */
  private async upload(messagePath: string, attachment: OutgoingAttachment, options: SendOptions): Promise<void> {
    options.abortSignal?.throwIfAborted();
    const started = Date.now();
    const session = await this.graph.call<UploadSessionAnswer>(`${messagePath}/attachments/createUploadSession`, options, (request) =>
      request.post({
        AttachmentItem: {
          attachmentType: 'file',
          name: attachment.filename,
          size: attachment.content.length,
          contentType: attachment.contentType,
          isInline: attachment.contentId !== undefined,
          ...(attachment.contentId !== undefined ? { contentId: attachment.contentId } : {}),
        },
      }),
    );
    const sdk = graphSdk();
    // The upload URL carries its own credential and lives outside Graph's hosts, so the
    // client sends it no Authorization header, as the service requires.
    const task = new sdk.LargeFileUploadTask(
      this.graph.client,
      new sdk.FileUpload(attachment.content, attachment.filename, attachment.content.length),
      { url: session.uploadUrl, expiry: new Date(session.expirationDateTime) },
      { rangeSize: UPLOAD_CHUNK_BYTES },
    );
    try {
      await task.upload();
    } catch (error) {
      throw translateGraphError(error, { profile: this.profile.name, mailbox: this.profile.mailbox });
    }
    this.deps.logger.info({ operation: 'send.uploadSession', profile: this.profile.name, outcome: 'ok', bytes: attachment.content.length, chunks: Math.ceil(attachment.content.length / UPLOAD_CHUNK_BYTES), durationMs: Date.now() - started });
  }

  /** A failed send should not leave a half-built draft behind; if even that fails, say which one. */
  private async discardDraft(messagePath: string, draftId: string): Promise<void> {
    try {
      await this.graph.call(messagePath, {}, (request) => request.delete());
    } catch (error) {
      this.deps.logger.warn({ operation: 'send.discardDraft', profile: this.profile.name, outcome: 'error', draftId, code: isMailError(error) ? error.code : 'EPROVIDER', error: error instanceof Error ? error.message : String(error) });
    }
  }
}

/**
 * The request that sends (sendMail, or a draft's send): a lost connection, a timeout or a 5xx
 * leaves unknown whether Exchange took the message, since the request may have arrived whole.
 * A 429 or a 4xx is a definite refusal.
 */
async function sending<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (!isMailError(error) || (error.code !== 'ECONNECTION' && error.code !== 'EUNAVAILABLE')) throw error;
    throw new MailError(error.code, error.message, {
      hint: `${error.hint ?? ''} Graph may have accepted the message: before it is sent again, its Message-ID is looked up in Sent Items.`.trim(),
      profile: error.profile,
      retryAfter: error.retryAfter,
      providerCode: error.providerCode,
      outcomeUnknown: true,
      cause: error,
    });
  }
}
