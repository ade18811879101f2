import { FakeProvider } from './fake.js';
import { behaviourSuite } from './testing/behaviour.js';
import { fakeHarness } from './testing/harness.js';

behaviourSuite('fake', async () => fakeHarness(new FakeProvider()));
