"""Server-rendered pages for people (team leaders now; advisers can be added the same way).

How the pieces fit, for whoever adds pages:
- `sessions.py`: the signed, HttpOnly, SameSite=Strict cookie and its CSRF token.
- `auth.py`: sign-in with an API key, sign-out, and `page_user(role)` for page dependencies.
- `sections.py`: the list of page sections and the lowest role each needs. A key may sign in
  when its role can see at least one section, so adding an adviser section (role agent) is
  what lets agents' keys sign in.
- `pages.py`: the one Jinja environment for pages, `render()`, and `PageRoute`, the route
  class that turns any error into an HTML page instead of problem+json.
- Templates extend `base.html` (header, navigation, sign-out, footer); `static/style.css`
  holds the look.
"""
