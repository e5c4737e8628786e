"""A stand-in for IntoAEC's web app: a firm connects its own Xero through the connect API.

It walks IntoAEC's help page "Xero Integration" as a firm's user sees it: Dashboard →
Integrations (tabs Account Software, All Integrations) → the Xero card's Connect → Configure
Xero → Configure, which asks the connect API (``/xero/api/v1`` on Airflow's API server) for a
sign-in session and sends the browser to Xero → sign in, approve → back on Configure Xero, where
each organisation reads the API's words: Connected, Sync Enabled, Future Access Saved. Each
organisation has Disconnect and a sync switch, and Reconnect when it reads Reconnect needed or
Disconnected.

The API is called from this app's back end only, with the bearer token from the environment
variable ``INTOAEC_CONNECT_API_TOKEN`` (the password of the Airflow connection ``intoaec_app``);
the browser never sees it. Run it with ``python -m examples.intoaec_app --help``; see README.md.
"""

from examples.intoaec_app.app import Config, create_app

__all__ = ["Config", "create_app"]
