"""Server-rendered pages for people: advisers (agents) and team leaders.

How the pieces fit, for whoever adds pages:
- `sessions.py`: the signed, HttpOnly, SameSite=Strict cookie and its CSRF token.
- `auth.py`: sign-in with an API key, sign-out, and `page_user(role)` for page dependencies.
- `sections.py`: the list of page sections and the lowest role each needs. A key may sign in
  when its role can see at least one section; the navigation lists the sections it can use.
- `pages.py`: the one Jinja environment for pages, `render()`, and `PageAPIRoute`, the route
  class that turns any error into an HTML page instead of problem+json.
- `reports.py`: team leaders' report pages. `advisers.py`: the transfer assistant and the
  feedback form, which build the API's request models and call the same services; `forms.py`
  keeps what was typed and files each refusal's code under its field (`_forms.html` shows it).
- `complete_reports.py`: "Complete reports" for relationship owners (and team leaders): the
  versions both bodies signed, each read-only from the report page's partials.
- `callbacks.py`: a call back's life for both bodies (`/callbacks`, `/callbacks/{id}`, the
  team leaders' `/callbacks/overview`), whose buttons call `callbacks.lifecycle`.
- Templates extend `base.html` (header, navigation, sign-out, footer); `static/style.css`
  holds the look.
"""
