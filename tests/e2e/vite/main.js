import { SSEChannel } from 'sse-channel';
import { installTestHooks } from './sse-test.js';

installTestHooks(SSEChannel);
