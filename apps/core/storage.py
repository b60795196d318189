"""Static files in production: WhiteNoise's compressed files with hashed names."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _regex(pattern) -> str:
    return pattern if isinstance(pattern, str) else pattern[0]


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """`collectstatic` hashes and compresses every file, and rewrites the references between
    them (CSS `url()`, `@import`) to the hashed names.

    Source maps are not shipped (the vendored Bootstrap names its `.map` files, which are left
    out), so `sourceMappingURL` comments are left as they are instead of failing the whole
    `collectstatic` for a file only a browser's developer tools would ask for.
    """

    patterns = tuple(
        (glob, tuple(p for p in rules if "sourceMappingURL" not in _regex(p)))
        for glob, rules in CompressedManifestStaticFilesStorage.patterns
    )
