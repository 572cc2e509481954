# Runs inside a busybox container started with --network host: fetches credentials from
# the token exchange service the way an SDK's container provider does.
wget -q -O - --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" \
  "$AWS_CONTAINER_CREDENTIALS_FULL_URI" | sed 's/"SecretAccessKey":"[^"]*"/"SecretAccessKey":"<hidden>"/'
echo
