// Types of callbridge-stream-chat: the call object, the responses, each provider's options.
// The shapes are Callbridge's answers (README "API"); stream-chat 8.x typed them as
// CreateCallResponse / GetCallTokenResponse in src/types.ts, with fewer fields.

export type CallType = 'video' | 'audio';
export type VideoProvider = 'agora' | 'hms';

/** Agora's side of a call: the channel to join (empty for 100ms calls). */
export interface AgoraCall {
  channel: string;
}

/** 100ms's side of a call: the room (both empty for Agora calls). */
export interface HMSCall {
  room_id: string;
  room_name: string;
}

/** `ended` once End Call ended the call or its time limit (`ends_at`) passed. */
export type CallState = 'active' | 'ended';

/** A call, as Create Call and End Call answer it. Both `agora` and `hms` are always present. */
export interface Call {
  /** The canonical (ASCII-lowercased) call id. */
  id: string;
  provider: VideoProvider;
  type: CallType;
  agora: AgoraCall;
  hms: HMSCall;
  state: CallState;
  /** RFC 3339, UTC (like "2026-12-06T08:44:34Z"), as are the other times. */
  created_at: string;
  /** User id of the creator. */
  created_by: string;
  /** When the call ends by its time limit; absent for a call without one. */
  ends_at?: string;
  /** Null while active. */
  ended_at: string | null;
  /** Who ended it; null while active, or when its time limit ended it. */
  ended_by: string | null;
  ended_reason: string | null;
  /** The call's media session, as the provider's events report it (idle until the first). */
  session: CallSession;
}

/**
 * A call's media session record: kept apart from `state` (a session that closes does not end
 * the call). Times are RFC 3339, UTC, or null.
 */
export interface CallSession {
  /** `live` while a session runs. */
  state: 'live' | 'idle';
  /** Start of the current or last session. */
  started_at: string | null;
  /** End of the last session, once it is over. */
  ended_at: string | null;
  /** Start to end, or to now while live; null before the first session. */
  duration_seconds: number | null;
  /** People in the session now. */
  participants: number;
  /** The most people in the call at once, over all its sessions. */
  max_participants: number;
  /** How many sessions there were. */
  sessions: number;
}

/** Agora calls ignore every option but `max_duration_seconds`. */
export type AgoraCallOptions = Record<string, unknown> & {
  /** The call's time limit in seconds, 60 to 86400. */
  max_duration_seconds?: number;
};

/** The room fields Callbridge forwards to 100ms's `POST /rooms`; any other key is a 400. */
export interface HMSCallOptions {
  template_id?: string;
  region?: 'in' | 'us' | 'eu' | 'auto';
  /** At most 500 characters. */
  description?: string;
  /** 0 to 2500, to 20000 with `large_room`. */
  size?: number;
  /** 120 to 43200; also the call's time limit. */
  max_duration_seconds?: number;
  large_room?: boolean;
}

export interface CreateCallOptions<Options = AgoraCallOptions | HMSCallOptions> {
  /** 1 to 64 of `a-z A-Z 0-9 . - : _`, case-insensitive; absent: Callbridge generates a UUIDv4. */
  id?: string;
  type: CallType;
  options?: Options;
  /** Server-side clients only: the user the call is created for. */
  user_id?: string;
  /** Server-side clients only: the user (and role) the call is created for. */
  user?: { id: string; role?: string };
}

export interface GetCallTokenOptions {
  /** Server-side clients only: the user the token is for. */
  user_id?: string;
}

export interface EndCallOptions {
  /** Why the call ended, at most 255 characters; kept as the call's `ended_reason`. */
  reason?: string | null;
  /** Server-side clients only: the user who ends the call. */
  user_id?: string;
}

interface Answer {
  /** Server-side handling time, like "0.42ms". */
  duration: string;
}

/** Agora: `token` is an AccessToken2 ("007...") RTC token bound to `agora_uid`. */
export interface AgoraCallTokenResponse extends Answer {
  token: string;
  /** The caller's Agora uid, 1 to 2^31-1 (join with it as an integer uid). */
  agora_uid: number;
  agora_app_id: string;
}

/** 100ms: `token` is a 100ms app token for the call's room; no Agora fields. */
export interface HMSCallTokenResponse extends Answer {
  token: string;
  agora_uid?: undefined;
  agora_app_id?: undefined;
}

export type GetCallTokenResponse = AgoraCallTokenResponse | HMSCallTokenResponse;

export type CreateCallResponse =
  | (AgoraCallTokenResponse & { call: Call & { provider: 'agora' } })
  | (HMSCallTokenResponse & { call: Call & { provider: 'hms' } });

/**
 * End Call's answer: the call, ended, and whether everyone was removed from it. Agora without
 * RESTful API credentials removes nobody: tokens already issued stay valid until
 * `tokens_valid_until`, and `note` says so.
 */
export type EndCallResponse = Answer & { call: Call & { state: 'ended' } } & (
  | { participants_removed: true; tokens_valid_until?: undefined; note?: undefined }
  | { participants_removed: false; tokens_valid_until: string; note: string }
);

/**
 * What this kit needs of a StreamChat client (stream-chat 8.x or 9.x): its public `post`, which
 * adds the user's token, `api_key` and Stream's headers and refreshes an expired token.
 */
export interface StreamChatLike {
  post(url: string, data?: unknown): Promise<unknown>;
  userID?: string;
  secret?: string;
}

/** A stream-chat Channel (`client.channel(type, id)`), or anything with its type and id. */
export interface ChannelLike {
  type: string;
  id?: string;
}

export interface Callbridge {
  /** The Callbridge URL requests go to, without a trailing slash. */
  readonly baseURL: string;
  /** `POST {baseURL}/channels/{type}/{id}/call` with `options` as the body. */
  createCall(channel: ChannelLike | string, options: CreateCallOptions): Promise<CreateCallResponse>;
  /** `POST {baseURL}/calls/{callID}` with `options` (`{}` or `{user_id}`) as the body. */
  getCallToken(callID: string, options?: GetCallTokenOptions): Promise<GetCallTokenResponse>;
  /**
   * `POST {baseURL}/calls/{callID}/end` with `options` (`{}`, `{reason}`, and `user_id` for
   * server-side clients) as the body. The call's creator, a role granted `end-call` or a
   * server-side client may end it; ending an ended call answers the same end.
   */
  endCall(callID: string, options?: EndCallOptions): Promise<EndCallResponse>;
}

/**
 * An error answer of Callbridge, as the SDK throws it (9.x `ErrorFromResponse`, 8.x `Error`):
 * `message` is "StreamChat error code <code>: <Callbridge's message>".
 */
export interface CallbridgeResponseError extends Error {
  /** Stream's error code (4, 5, 16, 17, 40, ...); null when the answer was not Callbridge's. */
  code: number | null;
  /** The HTTP status, as Stream's error body names it. */
  StatusCode: number;
  status: number;
  response: unknown;
}

/** Callbridge could not be reached (refused, DNS, timeout, CORS): `message` names the URL. */
export interface CallbridgeUnreachableError extends Error {
  name: 'CallbridgeUnreachableError';
  url: string;
  cause: unknown;
}

/** Create Call, Get Call Token and End Call on the Callbridge at `baseURL`, sent by `client`. */
export function callbridge(client: StreamChatLike, baseURL: string): Callbridge;

/**
 * For code written against stream-chat 8.x: gives `client.getCallToken` and
 * `channel.createCall` back (on 9.x) or points them at Callbridge (on 8.x). In TypeScript on
 * 9.x those methods are not in the SDK's types; use the returned object instead.
 */
export function restoreCallMethods(client: StreamChatLike, baseURL: string): Callbridge;

