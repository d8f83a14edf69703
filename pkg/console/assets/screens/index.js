// The console's screens, in navigation order. A screen is one module exporting
// { id, title, render(main, params) }: adding one is a file here and a line below.

import overview from "./overview.js";
import campaigns from "./campaigns.js";
import codes from "./codes.js";
import referrals from "./referrals.js";
import affiliates from "./affiliates.js";
import programme from "./programme.js";
import ledger from "./ledger.js";
import risk from "./risk.js";
import payouts from "./payouts.js";
import webhooks from "./webhooks.js";

export const screens = [overview, campaigns, codes, referrals, risk, affiliates, programme, ledger, payouts, webhooks];
