import { SSEChannel } from 'open-sse-channel';
import { installTestHooks } from './sse-test.js';

installTestHooks(SSEChannel);
