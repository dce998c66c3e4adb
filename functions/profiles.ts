import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { failureResponse, jsonResponse } from '../shared/http/problem.js';
import { describeProfiles } from '../shared/profiles/describe.js';
import { getRuntime } from '../shared/runtime.js';

export async function profiles(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, describeProfiles(getRuntime().profiles));
  } catch (error) {
    return failureResponse(error, context, { operation: 'profiles' });
  }
}

app.http('profiles', { methods: ['GET'], route: 'profiles', authLevel: 'function', handler: profiles });
