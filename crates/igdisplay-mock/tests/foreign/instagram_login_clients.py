"""Two Instagram Login clients written by others, from PyPI, against the mock over HTTPS with
only their base URL changed: instagram-platform-sdk (httpx) and python-facebook-api's
IGBusinessApi (requests). Each runs its default profile call (which asks for `biography` and
`website`), its comments call, and a media insights call; the SDK also its tags call.

Arguments: base URL, access token, account id. Prints one JSON object."""

import json
import sys

from instagram_platform import InstagramClient
from pyfacebook import IGBusinessApi

base, token, account = sys.argv[1:4]
out = {}

with InstagramClient(token, instagram_account_id=account, base_url=base, api_version="v26.0") as client:
    posts = client.media.get_user_media(limit=100)
    media = next(p.id for p in posts.data if (p.like_count or 0) > 0 and (p.comments_count or 0) > 0)
    profile = client.user.get_profile()
    out["sdk_username"] = profile.username
    out["sdk_biography"] = profile.biography
    out["sdk_website"] = profile.website
    comments = client.comments.get_comments(media)
    out["sdk_comments"] = len(comments.data)
    tagged = client.user.get_tagged_media()
    out["sdk_tagged"] = len(tagged.data)
    insights = client.insights.get_media_insights(media, ["views", "reach"])
    out["sdk_insights"] = {m.name: m.values[0].value for m in insights.data}

api = IGBusinessApi(access_token=token, instagram_business_id=account, base_url=base + "/", version="v21.0")
user = api.user.get_info()
out["pyfacebook_username"] = user.username
out["pyfacebook_biography"] = user.biography
comments = api.media.get_comments(media_id=media)
out["pyfacebook_comments"] = len(comments.data)
insights = api.media.get_insights(media_id=media, metric="views,reach")
out["pyfacebook_insights"] = {m.name: m.values[0].value for m in insights.data}

print(json.dumps(out))
