import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { jsonResponse, problemResponse } from '../shared/http/problem.js';
import { describeProfiles } from '../shared/profiles/describe.js';
import { getRuntime } from '../shared/runtime.js';

export async function profiles(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, describeProfiles(getRuntime().profiles));
  } catch (error) {
    return problemResponse(error);
  }
}

app.http('profiles', { methods: ['GET'], route: 'profiles', authLevel: 'function', handler: profiles });
