"""The documented flow of instagram-basic-display (PyPI), a client that is not ours, against
igdisplay-mock over HTTPS. Only its base URLs are changed; the browser's click is the mock's
`mock_approve_as`. Prints one JSON line the Rust test checks.

Usage: python instagram_basic_display_flow.py BASE_URL APP_ID APP_SECRET REDIRECT_URI
(with REQUESTS_CA_BUNDLE naming the mock's root certificate).
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

import requests
from instagram_basic_display.InstagramBasicDisplay import InstagramBasicDisplay

base, app_id, app_secret, redirect_uri = sys.argv[1:5]
InstagramBasicDisplay.API_URL = base + "/"
InstagramBasicDisplay.GRAPH_URL = base + "/"

instagram = InstagramBasicDisplay(app_id=app_id, app_secret=app_secret, redirect_url=redirect_uri)
login_url = instagram.get_login_url()

# The user approves in the authorize window; Instagram redirects back with the code.
window = requests.get(login_url + "&mock_approve_as=jayposiris", allow_redirects=False, timeout=10)
code = parse_qs(urlparse(window.headers["Location"]).query)["code"][0]

short = instagram.get_o_auth_token(code)
long = instagram.get_long_lived_token(short.get("access_token"))
instagram.set_access_token(long.get("access_token"))

profile = instagram.get_user_profile()
media = instagram.get_user_media()
items = list(media["data"])
while True:
    media = instagram.pagination(media)
    if not media:
        break
    items.extend(media["data"])

albums = [item for item in items if item.get("media_type") == "CAROUSEL_ALBUM"]
print(json.dumps({
    "username": profile["username"],
    "media_count": profile["media_count"],
    "items": len(items),
    "album_children": sum(len(album["children"]["data"]) for album in albums),
    "expires_in": long["expires_in"],
    "short_user_id": short["user_id"],
}))
