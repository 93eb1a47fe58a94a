'use strict';
// Run first in the release executable (release-entry.mjs): stop with a clear message if the addon is missing.
require('./zeromq-addon.cjs').exitUnlessAddonPresent();
