// Compiled, not run: index.d.ts against the real StreamChat and Channel types of both versions.
import { StreamChat } from 'stream-chat';
import { StreamChat as StreamChat8 } from 'stream-chat-8';
import {
  callbridge,
  restoreCallMethods,
  type Call,
  type CallSession,
  type CreateCallResponse,
  type GetCallTokenResponse,
  type HMSCallOptions,
  type CallbridgeResponseError,
  type EndCallResponse,
} from 'callbridge-stream-chat';

export async function nine(client: StreamChat): Promise<number | undefined> {
  const calls = callbridge(client, 'https://abc.execute-api.eu-west-1.amazonaws.com');
  const created: CreateCallResponse = await calls.createCall(client.channel('messaging', 'general'), { id: 'standup', type: 'video' });
  const call: Call = created.call;
  const session: CallSession = call.session;
  const live: boolean = session.state === 'live';
  const seconds: number | null = session.duration_seconds;
  void live;
  void seconds;
  if (created.agora_uid !== undefined) {
    const appId: string = created.agora_app_id; // an Agora answer has both
    void appId;
  }
  const room: HMSCallOptions = { region: 'eu', size: 10, large_room: false };
  await calls.createCall('messaging:general', { type: 'audio', options: room, user_id: 'a' });
  const token: GetCallTokenResponse = await calls.getCallToken(call.id, { user_id: 'a' });
  const ended: EndCallResponse = await calls.endCall(call.id, { reason: 'over', user_id: 'a' });
  const endedAt: string | null = ended.call.ended_at;
  void endedAt;
  if (!ended.participants_removed) {
    const until: string = ended.tokens_valid_until; // present when nobody was removed
    void until;
  }
  await calls.createCall('messaging:general', { type: 'video', options: { max_duration_seconds: 600 } });
  try {
    await calls.getCallToken('x');
  } catch (e) {
    const err = e as CallbridgeResponseError;
    if (err.code === 40 && err.StatusCode === 401) return undefined;
  }
  return token.agora_uid;
}

export async function eight(client: StreamChat8): Promise<string> {
  const calls = restoreCallMethods(client, 'http://127.0.0.1:8080');
  return (await calls.getCallToken('standup')).token;
}

// @ts-expect-error: a reason is a string
callbridge(new StreamChat('k'), 'http://x').endCall('x', { reason: 5 });
// @ts-expect-error: Create Call needs a type
callbridge(new StreamChat('k'), 'http://x').createCall('messaging:general', { id: 'x' });
// @ts-expect-error: 100ms regions are in, us, eu, auto
const badRegion: HMSCallOptions = { region: 'mars' };
void badRegion;
